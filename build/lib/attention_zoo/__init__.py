"""attention-zoo: landmark attention papers rebuilt from their equations."""

__version__ = "0.1.0"
