"""Broker adapters that put fastroute inside existing consumers (one subpackage per broker)."""
