"""One pane per tab of the main screen."""
