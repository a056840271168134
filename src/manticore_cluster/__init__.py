"""manticore_cluster: Manticore scaled out on NATS JetStream (see docs/scale-out.md)."""
