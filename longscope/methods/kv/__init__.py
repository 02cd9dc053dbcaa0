"""In-model methods: each changes the attention or the KV cache of an in-process model; one file each."""
