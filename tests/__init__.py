"""stylecam's tests: a fast CPU tier (tiny models, fakes) and a GPU tier that skips itself without a GPU."""
