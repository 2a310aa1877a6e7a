"""The REST JSON API (tornado), served by the scheduler process."""
