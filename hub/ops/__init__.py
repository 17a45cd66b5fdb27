"""What operators watch: Prometheus metrics (`metrics`) and the progress bars of long commands
(`progress`)."""
