"""Hardware: device interfaces (``typing.Protocol``), drivers on pymodbus and pyserial, in-memory fakes, the
sensor poller. Only the transport modules import the field-bus libraries."""
