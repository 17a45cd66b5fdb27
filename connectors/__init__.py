"""Built-in connectors: Stripe and PayPal, registered as ordinary plugins."""
