# AMI emulator (moto + our extensions). Included by the top Makefile; also works
# standalone: make -f infra/emulator/emulator.mk emulator-venv emulator-test
# Paths are relative to the repository root.

EMULATOR_PORT ?= 5000
EMULATOR_DIR ?= infra/emulator
EMULATOR_VENV ?= .venv/emulator
EMULATOR_PY := $(EMULATOR_VENV)/bin/python
EMULATOR_STAMP := $(EMULATOR_VENV)/.installed

.PHONY: emulator-venv emulator emulator-test

emulator-venv: $(EMULATOR_STAMP)

$(EMULATOR_STAMP): $(EMULATOR_DIR)/requirements.txt
	test -x $(EMULATOR_PY) || python3 -m venv $(EMULATOR_VENV)
	$(EMULATOR_PY) -m pip install --quiet --disable-pip-version-check -r $(EMULATOR_DIR)/requirements.txt
	touch $@

# GNU make passes SIGTERM on to the recipe's process; --exit-with-parent also stops the
# emulator if make itself is killed outright (nothing is left holding the port).
emulator: $(EMULATOR_STAMP)
	$(EMULATOR_PY) $(EMULATOR_DIR)/launcher.py --host 127.0.0.1 --port $(EMULATOR_PORT) --exit-with-parent

emulator-test: $(EMULATOR_STAMP)
	$(EMULATOR_PY) -m pytest -q -p no:cacheprovider $(EMULATOR_DIR)/tests
