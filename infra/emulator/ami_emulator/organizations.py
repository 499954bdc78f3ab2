"""AWS Organizations as a hub account sees it (moto's backend, made stricter).

moto keeps one organization per management account (`OrganizationsBackend`) and a map
member -> management account. This module changes, at start-up, only what a hub that
enumerates accounts relies on:

* ListAccounts / ListAccountsForParent / ListOrganizationalUnitsForParent: answered from
  the organization's management backend when called by the management account or by a
  registered delegated administrator (AWS: "can be called only from the organization's
  management account or by a member account that is a delegated administrator");
  another member -> `AccessDeniedException`, an account outside any organization ->
  `AWSOrganizationsNotInUseException`. moto answered a member with an empty list.
* Paging: `MaxResults` 1-20 (the model's range, checked by validation.py), default 20
  when omitted (AWS documents an operation-specific maximum without naming it: our
  choice), stable creation order, opaque `NextToken` bound to the operation and parent;
  a token not handed out -> `InvalidInputException` (`INVALID_PAGINATION_TOKEN`
  wording). moto paged ListAccounts by JoinedTimestamp, which repeats when accounts join
  within the same second, so pages could skip accounts.
* CreateOrganizationalUnit: the parent must exist (`ParentNotFoundException`) and the
  name must be unique under it (`DuplicateOrganizationalUnitException`).
* MoveAccount: `SourceParentId` must be the account's parent (`SourceParentNotFoundException`),
  the destination must differ (`DuplicateAccountException`).
* Account status: ACTIVE until the control API (`set_status`) suspends it, as AWS does
  when an account is suspended or closed (moto only has CloseAccount).
* `seed()`: an organization in one call for tests (control API `POST
  /_emulator/organizations/seed`): management account, OUs (nested with `/`), member
  accounts with the ids the test chooses (each gets moto's
  OrganizationAccountAccessRole, trusting the management account).

Reset clears moto's member -> management map too (moto's reset leaves it behind).
"""
from __future__ import annotations

import base64
import json
from typing import Any
from unittest import mock

from moto.organizations import utils as org_utils
from moto.organizations.exceptions import OrganizationsClientError
from moto.organizations.models import FakeAccount, OrganizationsBackend, organizations_backends
from moto.organizations.responses import OrganizationsResponse

from . import state

PARTITION = "aws"
DEFAULT_PAGE = 20
STATUSES = ("ACTIVE", "SUSPENDED", "PENDING_CLOSURE")


def _error(code: str, message: str, reason: str | None = None) -> OrganizationsClientError:
    err = OrganizationsClientError(code, message)
    if reason:
        err.reason = reason  # InvalidInputException's `Reason` member (moto serializes it)
    return err


def management_backend(account: str) -> OrganizationsBackend | None:
    """The backend holding the organization `account` belongs to (None: no organization)."""
    own = organizations_backends[account][PARTITION]
    if own.org is not None:
        return own
    owner = organizations_backends.master_accounts.get(account)
    if owner is None:
        return None
    backend = organizations_backends[owner[0]][owner[1]]
    return backend if backend.org is not None else None


def listing_backend(account: str) -> OrganizationsBackend:
    """Backend a list call of `account` reads, or the error AWS answers."""
    backend = management_backend(account)
    if backend is None:
        raise _error("AWSOrganizationsNotInUseException",
                     "Your account is not a member of an organization.")
    if backend.account_id != account and not any(a.account.id == account for a in backend.admins):
        raise _error("AccessDeniedException", "You don't have permissions to access this resource.")
    return backend


# ------------------------------------------------------------------------------ paging

def _token(op: str, key: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([op, key, offset]).encode()).decode()


def _offset(op: str, key: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        t_op, t_key, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
        if t_op == op and t_key == key and isinstance(offset, int) and offset >= 0:
            return offset
    except Exception:
        pass
    raise _error("InvalidInputException", "You specified an invalid value for nextToken. "
                 "You must get the value from the response to a previous call to the API.",
                 "INVALID_NEXT_TOKEN")


def page(resp: OrganizationsResponse, op: str, key: str, items: list, field: str) -> str:
    max_results = resp._get_param("MaxResults") or DEFAULT_PAGE
    start = _offset(op, key, resp._get_param("NextToken"))
    chunk = items[start:start + max_results]
    out: dict[str, Any] = {field: chunk}
    if start + max_results < len(items):
        out["NextToken"] = _token(op, key, start + max_results)
    return json.dumps(out)


def parent(backend: OrganizationsBackend, parent_id: str | None) -> str:
    """The parent id if it is the root or an OU of the organization (moto raises an XML
    RESTError from a JSON service here)."""
    if not any(ou.id == parent_id for ou in backend.ou):
        raise _error("ParentNotFoundException", "You specified parent that doesn't exist.")
    return parent_id  # type: ignore[return-value]


def list_accounts(self: OrganizationsResponse) -> str:
    with state.LOCK:
        backend = listing_backend(self.current_account)
        accounts = [a.describe() for a in backend.accounts]
    return page(self, "ListAccounts", "", accounts, "Accounts")


def list_accounts_for_parent(self: OrganizationsResponse) -> str:
    parent_id = self._get_param("ParentId")
    with state.LOCK:
        backend = listing_backend(self.current_account)
        parent(backend, parent_id)
        accounts = [a.describe() for a in backend.accounts if a.parent_id == parent_id]
    return page(self, "ListAccountsForParent", parent_id, accounts, "Accounts")


def list_organizational_units_for_parent(self: OrganizationsResponse) -> str:
    parent_id = self._get_param("ParentId")
    with state.LOCK:
        backend = listing_backend(self.current_account)
        parent(backend, parent_id)
        ous = [{"Id": ou.id, "Arn": ou.arn, "Name": ou.name}
               for ou in backend.ou if ou.parent_id == parent_id]
    return page(self, "ListOrganizationalUnitsForParent", parent_id, ous, "OrganizationalUnits")


# ------------------------------------------------------------------- stricter writes

_moto_create_ou = OrganizationsBackend.create_organizational_unit
_moto_move_account = OrganizationsBackend.move_account


def create_organizational_unit(self: OrganizationsBackend, **kwargs: Any) -> dict[str, Any]:
    if self.org is None:
        raise _error("AWSOrganizationsNotInUseException",
                     "Your account is not a member of an organization.")
    parent_id = parent(self, kwargs.get("ParentId"))
    if any(ou.parent_id == parent_id and ou.name == kwargs.get("Name") for ou in self.ou):
        raise _error("DuplicateOrganizationalUnitException", "An OU with the same name already exists.")
    return _moto_create_ou(self, **kwargs)


def move_account(self: OrganizationsBackend, **kwargs: Any) -> None:
    account = self.get_account_by_id(kwargs["AccountId"])
    parent(self, kwargs["DestinationParentId"])
    parent(self, kwargs["SourceParentId"])
    if account.parent_id != kwargs["SourceParentId"]:
        raise _error("SourceParentNotFoundException",
                     "You specified a source parent that doesn't exist.")
    if account.parent_id == kwargs["DestinationParentId"]:
        raise _error("DuplicateAccountException", "That account is already present in the "
                     "specified destination.")
    _moto_move_account(self, **kwargs)


# --------------------------------------------------------------------- control API

def find_account(account_id: str) -> FakeAccount | None:
    for per_partition in list(organizations_backends.values()):
        backend = per_partition.get(PARTITION) if hasattr(per_partition, "get") else None
        if backend is None or backend.org is None:
            continue
        for account in backend.accounts:
            if account.id == account_id:
                return account
    return None


def set_status(account_id: str, status: str) -> dict[str, Any]:
    """Suspend (or reactivate) a member account. ValueError / KeyError for bad input."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    with state.LOCK:
        account = find_account(account_id)
        if account is None:
            raise KeyError(f"account {account_id} is in no organization: create it first "
                           "(CreateAccount or POST /_emulator/organizations/seed)")
        account.status = status
        account.state = status
        return {"account_id": account_id, "status": status}


def _new_account(org, account_id: str, name: str) -> FakeAccount:
    # FakeAccount draws its id at random and creates OrganizationAccountAccessRole in that
    # account's IAM: give it the id the test chose instead.
    with mock.patch.object(org_utils, "make_random_account_id", lambda: account_id):
        return FakeAccount(org, AccountName=name, Email=f"{name}@example.com")


def seed(body: dict) -> dict[str, Any]:
    """{"management": "123456789012", "ous": ["Workloads", "Workloads/Prod"],
        "accounts": [{"id": "111122223333", "name": "spoke-1", "ou": "Workloads/Prod",
                      "status": "ACTIVE"}], "delegated_admin": "444455556666"}"""
    management = str(body.get("management", "123456789012"))
    accounts = body.get("accounts") or []
    if not isinstance(accounts, list):
        raise ValueError('"accounts" must be a list of {"id", "name"?, "ou"?, "status"?}')
    for spec in accounts:
        aid = str(spec.get("id", "")) if isinstance(spec, dict) else ""
        if not (len(aid) == 12 and aid.isdigit()) or aid == management:
            raise ValueError(f"account {spec!r}: id must be 12 digits, not the management account")
        if spec.get("status", "ACTIVE") not in STATUSES:
            raise ValueError(f"account {aid}: status must be one of {', '.join(STATUSES)}")
    ou_paths = list(body.get("ous") or []) + [s["ou"] for s in accounts if s.get("ou")]
    with state.LOCK:
        backend = organizations_backends[management][PARTITION]
        taken = [s["id"] for s in accounts if find_account(str(s["id"])) is not None]
        if backend.org is not None or management_backend(management) is not None or taken:
            raise ValueError(f"account(s) {[management] + taken} already in an organization: "
                             "POST /_emulator/reset first")
        backend.create_organization(region="us-east-1", FeatureSet="ALL")
        org = backend.org
        ou_ids: dict[str, str] = {}
        for path in ou_paths:
            parent_ou = org.root_id
            parts = [p for p in str(path).split("/") if p]
            for i, name in enumerate(parts):
                key = "/".join(parts[:i + 1])
                if key not in ou_ids:
                    ou_ids[key] = backend.create_organizational_unit(
                        Name=name, ParentId=parent_ou)["OrganizationalUnit"]["Id"]
                parent_ou = ou_ids[key]
        out_accounts = []
        for spec in accounts:
            aid = str(spec["id"])
            account = _new_account(org, aid, spec.get("name") or f"account-{aid}")
            backend.accounts.append(account)
            organizations_backends.master_accounts[aid] = (management, PARTITION)
            if spec.get("ou"):
                account.parent_id = ou_ids["/".join(p for p in spec["ou"].split("/") if p)]
            account.status = account.state = spec.get("status", "ACTIVE")
            out_accounts.append({"id": aid, "name": account.name, "parent_id": account.parent_id,
                                 "status": account.status})
        admin = body.get("delegated_admin")
        if admin:
            backend.register_delegated_administrator(
                AccountId=str(admin), ServicePrincipal="ssm.amazonaws.com")
        return {"organization_id": org.id, "root_id": org.root_id, "management": management,
                "ous": ou_ids, "accounts": out_accounts}


def organization_of(account: str) -> str | None:
    """Organization id of an account (for aws:PrincipalOrgID), None outside any."""
    backend = management_backend(account)
    return backend.org.id if backend is not None else None


def reset() -> None:
    organizations_backends.master_accounts.clear()


def install() -> None:
    OrganizationsResponse.list_accounts = list_accounts
    OrganizationsResponse.list_accounts_for_parent = list_accounts_for_parent
    OrganizationsResponse.list_organizational_units_for_parent = list_organizational_units_for_parent
    OrganizationsBackend.create_organizational_unit = create_organizational_unit
    OrganizationsBackend.move_account = move_account
