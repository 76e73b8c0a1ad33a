"""What the bridge tells others: Alertmanager, webhooks, and its HA twin (whose coverage it
reads, and which of the pair sends the webhooks). Each receiver has its own bounded queue
or one request in flight, so a slow one never delays another."""
