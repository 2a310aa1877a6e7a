"""pymesos glue: driver callbacks become state-machine events; commands become driver calls."""
