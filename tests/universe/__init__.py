"""Tests of the DC/OS Universe package: schemas, rendering as Cosmos does, and the settings it sets."""
