"""The local demo: an embedded Label Studio, a sample LangChain app, our exporter between them."""
