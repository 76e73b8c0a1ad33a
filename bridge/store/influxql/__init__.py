"""The InfluxQL the bridge asks: every statement is built here, from the schema's names,
and each answer is handed back by name. Pure text, no I/O (``store.storage`` runs them)."""
