"""Fulfilment: the shipment of each allocation, from packing to delivery, and the deliveries that failed."""
