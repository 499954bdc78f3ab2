# infra/infra.mk - infrastructure targets of ami-lifecycle.
#
# Included by the top Makefile (`include infra/infra.mk`) or used on its own
# from the repository root:  make -f infra/infra.mk tools infra-check
#
#   tools           .venv/tools (tools-requirements.txt) + cfn-guard in .tools/bin; stamped, re-runs are no-ops
#   lint-templates  sam validate --lint (template.yaml) + cfn-lint (template, forwarder, spoke role, policies); offline
#   guard-test      cfn-guard: template + forwarder + spoke role + operator policy sample must pass, bad-template must FAIL, rule unit tests
#   pattern-test    pytest infra/tests (EventBridge patterns against AWS-shaped events, in moto; IAM
#                   policies; the quiesce document's script under bash with stub fsfreeze/sync)
#   infra-check     lint-templates guard-test pattern-test
#   package         sam build (cargo-lambda, ARCH=arm64|x86_64) and zipped bootstrap size per function;
#                   installs package-requirements.txt (cargo-lambda, zig) into .venv/tools first
#   deploy          sam deploy --guided
#
# Every variable has a ?= default so the fragment works standalone; the top
# Makefile may set them before the include.

# Keep whatever default goal the including Makefile has.
_INFRA_PREVIOUS_DEFAULT_GOAL := $(.DEFAULT_GOAL)

PYTHON        ?= python3
TOOLS_VENV    ?= .venv/tools
TOOLS_BIN     := .venv/tools/bin
TOOLS_DIR     ?= .tools
TEMPLATE      ?= template.yaml
FORWARDER     ?= infra/forwarder.yaml
SPOKE_ROLE    ?= infra/spoke-role.yaml
ARCH          ?= arm64
STACK_NAME    ?= ami-lifecycle

# cfn-guard 3: the prebuilt static binary shipped inside the npm package
# @cdklabs/cdk-validator-cfnguard (bin/ubuntu/<arch>/cfn-guard). Fallback when
# npm is missing: `cargo install --locked cfn-guard` into .tools (slow, once).
CFN_GUARD_VERSION ?= 3.1.1
CFN_GUARD_NPM     ?= @cdklabs/cdk-validator-cfnguard@0.0.62
CFN_GUARD         ?= $(TOOLS_DIR)/bin/cfn-guard
CFN_GUARD_STAMP   := $(TOOLS_DIR)/.stamp-cfn-guard-$(CFN_GUARD_VERSION)
TOOLS_STAMP       := $(TOOLS_VENV)/.stamp-requirements
PACKAGE_STAMP     := $(TOOLS_VENV)/.stamp-package-requirements

GUARD_RULES   ?= infra/guard/rules.guard
GUARD_TESTS   ?= infra/guard/tests/rules_tests.yaml
GUARD_BAD     ?= infra/guard/tests/bad-template.yaml

# sam/cfn-lint must not need an account or the network: fixed region, dummy
# credentials, no telemetry, no instance-metadata lookups.
INFRA_OFFLINE_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
	AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0 AWS_CONFIG_FILE=/dev/null \
	AWS_SHARED_CREDENTIALS_FILE=/dev/null

ifeq ($(ARCH),arm64)
RUST_TARGET := aarch64-unknown-linux-gnu
else ifeq ($(ARCH),x86_64)
RUST_TARGET := x86_64-unknown-linux-gnu
else
$(error ARCH must be arm64 or x86_64, not $(ARCH))
endif

SAM_FUNCTIONS := CreateImageFunction ReplicateFunction ShareFunction CleanupFunction PublishFunction

.PHONY: tools lint-templates guard-test pattern-test infra-check package deploy

# --- tools ---------------------------------------------------------------------

tools: $(TOOLS_STAMP) $(CFN_GUARD_STAMP)

$(TOOLS_STAMP): infra/tools-requirements.txt
	test -x $(TOOLS_BIN)/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(TOOLS_BIN)/python -m pip install -q --disable-pip-version-check -r infra/tools-requirements.txt
	$(TOOLS_BIN)/python -m pip check
	touch $@

$(CFN_GUARD_STAMP):
	mkdir -p $(TOOLS_DIR)/bin
	set -e; \
	case "$$(uname -m)" in x86_64|amd64) a=x86_64;; aarch64|arm64) a=aarch64;; *) a=none;; esac; \
	if command -v npm >/dev/null 2>&1 && [ "$$a" != none ]; then \
	  tmp=$$(mktemp -d); \
	  (cd $$tmp && npm pack --silent $(CFN_GUARD_NPM) >/dev/null 2>&1); \
	  tar -xzf $$tmp/*.tgz -C $$tmp package/bin/ubuntu/$$a/cfn-guard; \
	  install -m 0755 $$tmp/package/bin/ubuntu/$$a/cfn-guard $(CFN_GUARD); \
	  rm -rf $$tmp; \
	else \
	  cargo install --locked cfn-guard --version $(CFN_GUARD_VERSION) --root $(TOOLS_DIR); \
	fi; \
	$(CFN_GUARD) --version | grep -q ' $(CFN_GUARD_VERSION)$$'
	touch $@

# cargo-lambda and zig for `make package` only (no check needs them): same venv, so sam
# finds cargo-lambda on PATH.
$(PACKAGE_STAMP): $(TOOLS_STAMP) infra/package-requirements.txt
	$(TOOLS_BIN)/python -m pip install -q --disable-pip-version-check -r infra/package-requirements.txt
	$(TOOLS_BIN)/python -m pip check
	touch $@

# --- checks ----------------------------------------------------------------------

lint-templates: $(TOOLS_STAMP)
	$(INFRA_OFFLINE_ENV) $(TOOLS_BIN)/sam validate --lint -t $(TEMPLATE)
	$(INFRA_OFFLINE_ENV) $(TOOLS_BIN)/cfn-lint $(TEMPLATE) $(FORWARDER) $(SPOKE_ROLE) infra/policies/*.yaml
	@echo "lint-templates: OK"

guard-test: $(CFN_GUARD_STAMP)
	$(CFN_GUARD) validate -r $(GUARD_RULES) -d $(TEMPLATE) -d $(FORWARDER) -d $(SPOKE_ROLE) -d infra/policies/operator-publish-policy.yaml -d infra/policies/operator-migrate-policy.yaml -S all
	@out=$$(mktemp); \
	if $(CFN_GUARD) validate -r $(GUARD_RULES) -d $(GUARD_BAD) -S fail >$$out 2>&1; then \
	  cat $$out; rm -f $$out; echo "guard-test: $(GUARD_BAD) PASSED cfn-guard - the rules let a bad template through" >&2; exit 1; \
	else rc=$$?; fi; \
	if [ $$rc -ne 19 ]; then cat $$out; rm -f $$out; echo "guard-test: cfn-guard failed with exit code $$rc (19 = non-compliant)" >&2; exit 1; fi; \
	for r in no_wildcard_actions destructive_ec2_actions_conditioned_on_managed_by no_public_sharing_permission \
	         sam_functions_use_inline_policies roles_have_no_broad_managed_policies \
	         mapped_queues_deny_foreign_senders kms_create_grant_constrained kms_key_use_via_service_on_named_keys \
	         seal_key_is_hmac mac_keys_used_only_by_named_roles \
	         ssm_parameter_writes_only_under_deployment_path launch_template_changes_only_on_tracked_templates \
	         send_command_only_named_documents_on_opted_in_instances trust_policies_name_principals_with_external_id \
	         fan_out_mappings_report_batch_item_failures assume_role_only_own_spoke_role \
	         event_bus_policies_admit_only_the_organization; do \
	  grep -Eq "/$$r +FAIL" $$out || { cat $$out; rm -f $$out; echo "guard-test: rule $$r did not fail on $(GUARD_BAD)" >&2; exit 1; }; \
	done; rm -f $$out; echo "guard-test: $(GUARD_BAD) rejected by every rule, as it must be"
	$(CFN_GUARD) test -r $(GUARD_RULES) -t $(GUARD_TESTS)
	@echo "guard-test: OK"

pattern-test: $(TOOLS_STAMP)
	$(INFRA_OFFLINE_ENV) $(TOOLS_BIN)/python -m pytest -q -p no:cacheprovider infra/tests

infra-check: lint-templates guard-test pattern-test
	@echo "infra-check: OK"

# --- build and deploy (need Rust + the target's std; never run by infra-check) ----

# sam build runs `cargo lambda build --release --target <arch>` per function
# (cargo-lambda and zig come from .venv/tools, package-requirements.txt). Then each
# built bootstrap is zipped the way Lambda receives it and its size printed.
package: $(PACKAGE_STAMP)
	@if command -v rustup >/dev/null 2>&1; then \
	  rustup target list --installed | grep -qx $(RUST_TARGET) || rustup target add $(RUST_TARGET); fi
	PATH="$(abspath $(TOOLS_BIN)):$$PATH" SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 \
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  $(TOOLS_BIN)/sam build -t $(TEMPLATE) --parameter-overrides Architecture=$(ARCH)
	@echo "zipped bootstrap per function ($(ARCH)):"
	@for fn in $(SAM_FUNCTIONS); do \
	  $(TOOLS_BIN)/python -c 'import io, sys, zipfile, pathlib; \
fn = sys.argv[1]; p = pathlib.Path(".aws-sam/build") / fn / "bootstrap"; \
buf = io.BytesIO(); z = zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9); \
info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0)); info.external_attr = 0o755 << 16; \
info.compress_type = zipfile.ZIP_DEFLATED; z.writestr(info, p.read_bytes()); z.close(); n = len(buf.getvalue()); \
print(f"  {fn:<22} {p.stat().st_size:>10} bytes raw  {n:>10} bytes zipped  {n / 1048576:6.2f} MiB")' $$fn || exit 1; \
	done

deploy: $(TOOLS_STAMP)
	$(TOOLS_BIN)/sam deploy --guided --stack-name $(STACK_NAME) \
	  --capabilities CAPABILITY_IAM --parameter-overrides Architecture=$(ARCH)

.DEFAULT_GOAL := $(_INFRA_PREVIOUS_DEFAULT_GOAL)
