"""Where targets come from besides the static list: Prometheus's file and HTTP discovery
formats (``groups``, pure), the sources that read them (``sources``), and the shard a
replica keeps."""
