"""The cabinet I/O board: interfaces (``interface.py``), the Modbus driver (``driver.py``) and an in-memory fake
(``fake.py``)."""
