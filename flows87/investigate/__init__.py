"""What investigators work with: the case store, the case web app, and the goAML/CSV export."""
