# AMI emulator (moto + our extensions). Included by the top Makefile; also works
# standalone: make -f infra/emulator/emulator.mk emulator-venv emulator-test
# Paths are relative to the repository root.

EMULATOR_PORT ?= 5000
EMULATOR_DIR ?= infra/emulator
EMULATOR_VENV ?= .venv/emulator
EMULATOR_PY := $(EMULATOR_VENV)/bin/python
EMULATOR_STAMP := $(EMULATOR_VENV)/.installed

.PHONY: emulator-venv emulator emulator-test emulator-moto-tests

emulator-venv: $(EMULATOR_STAMP)

$(EMULATOR_STAMP): $(EMULATOR_DIR)/requirements.txt
	test -x $(EMULATOR_PY) || python3 -m venv $(EMULATOR_VENV)
	$(EMULATOR_PY) -m pip install --quiet --disable-pip-version-check -r $(EMULATOR_DIR)/requirements.txt
	touch $@

# GNU make passes SIGTERM on to the recipe's process; --exit-with-parent also stops the
# emulator if make itself is killed outright (nothing is left holding the port).
emulator: $(EMULATOR_STAMP)
	$(EMULATOR_PY) $(EMULATOR_DIR)/launcher.py --host 127.0.0.1 --port $(EMULATOR_PORT) --exit-with-parent

# Our tests, then moto's own AMI/snapshot/tag tests against the emulator.
emulator-test: $(EMULATOR_STAMP)
	$(EMULATOR_PY) -m pytest -q -p no:cacheprovider $(EMULATOR_DIR)/tests
	$(EMULATOR_PY) $(EMULATOR_DIR)/moto_suite/run.py

# moto's tests from its source release (fetched once into .venv/moto-src), run in server
# mode against the emulator; accepted differences: moto_suite/differences.md.
emulator-moto-tests: $(EMULATOR_STAMP)
	$(EMULATOR_PY) $(EMULATOR_DIR)/moto_suite/run.py
