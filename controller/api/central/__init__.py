"""The central server's HTTP side: the pharmacy's fleet console (sign-in against the hospital directory, the
fleet's cabinets, Global Find, the fleet-wide pick list) and its pages."""
