# Convenience aliases; the real logic lives in dev.py (needs only Python).
PY ?= python3

.PHONY: setup demo test test-slow bench lint docs
setup:
	$(PY) dev.py setup
demo:
	$(PY) dev.py demo
test:
	$(PY) dev.py test
test-slow:
	$(PY) dev.py test --slow
bench:
	$(PY) dev.py bench
lint:
	$(PY) dev.py lint
docs:
	$(PY) dev.py docs
