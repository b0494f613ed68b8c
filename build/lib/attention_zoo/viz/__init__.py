"""Figures: training curves here; attention maps with the papers that need them."""
