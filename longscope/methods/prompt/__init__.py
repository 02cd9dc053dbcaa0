"""Prompt-level methods: each changes what is sent to the model and works with every backend; one file each."""
