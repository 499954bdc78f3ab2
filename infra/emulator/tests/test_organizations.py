"""Organizations through the emulator: the calls a hub makes to enumerate accounts."""
from __future__ import annotations

import urllib.error

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

HUB = "123456789012"
SPOKE_1 = "111122223333"
SPOKE_2 = "444455556666"
OUTSIDER = "777788889999"


def org_client(emu, account=HUB):
    return emu.client("organizations", account=account)


def unchecked(emu, account=HUB):
    """A client that sends what botocore would refuse, to see the emulator's answer."""
    return boto3.client("organizations", region_name="us-east-1", endpoint_url=emu.url,
                        aws_access_key_id=account, aws_secret_access_key="secret",
                        config=Config(parameter_validation=False,
                                      retries={"total_max_attempts": 1}))


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def seed(emu, **extra):
    body = {"management": HUB, "ous": ["Workloads/Prod"],
            "accounts": [{"id": SPOKE_1, "name": "spoke-1", "ou": "Workloads"},
                         {"id": SPOKE_2, "name": "spoke-2", "ou": "Workloads/Prod"}]}
    body.update(extra)
    return emu.control("POST", "/organizations/seed", body)


def test_api_built_organization_lists_accounts_and_ous(emu):
    org = org_client(emu)
    created = org.create_organization(FeatureSet="ALL")["Organization"]
    assert created["MasterAccountId"] == HUB
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="Workloads")["OrganizationalUnit"]
    status = org.create_account(Email="a@example.com", AccountName="a")["CreateAccountStatus"]
    assert status["State"] == "SUCCEEDED"
    new_id = status["AccountId"]
    org.move_account(AccountId=new_id, SourceParentId=root, DestinationParentId=ou["Id"])

    ids = {a["Id"]: a for a in org.list_accounts()["Accounts"]}
    assert set(ids) == {HUB, new_id}
    assert ids[new_id]["Status"] == "ACTIVE"
    in_ou = org.list_accounts_for_parent(ParentId=ou["Id"])["Accounts"]
    assert [a["Id"] for a in in_ou] == [new_id]
    assert [a["Id"] for a in org.list_accounts_for_parent(ParentId=root)["Accounts"]] == [HUB]
    ous = org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
    assert [o["Name"] for o in ous] == ["Workloads"]
    # A member sees the organization it belongs to.
    described = org_client(emu, new_id).describe_organization()["Organization"]
    assert described["Id"] == created["Id"]


def test_move_account_checks_source_and_destination(emu):
    info = seed(emu)
    org = org_client(emu)
    prod = info["ous"]["Workloads/Prod"]
    with pytest.raises(ClientError) as e:  # SPOKE_1 is in Workloads, not the root
        org.move_account(AccountId=SPOKE_1, SourceParentId=info["root_id"], DestinationParentId=prod)
    assert code(e) == "SourceParentNotFoundException"
    with pytest.raises(ClientError) as e:
        org.move_account(AccountId=SPOKE_2, SourceParentId=prod, DestinationParentId=prod)
    assert code(e) == "DuplicateAccountException"
    with pytest.raises(ClientError) as e:
        org.create_organizational_unit(ParentId="ou-abcd-12345678", Name="X")
    assert code(e) == "ParentNotFoundException"
    with pytest.raises(ClientError) as e:
        org.create_organizational_unit(ParentId=info["root_id"], Name="Workloads")
    assert code(e) == "DuplicateOrganizationalUnitException"
    # nothing moved
    assert [a["Id"] for a in org.list_accounts_for_parent(ParentId=prod)["Accounts"]] == [SPOKE_2]


def test_seed_builds_nested_ous_and_recursive_walk_finds_every_account(emu):
    info = seed(emu)
    org = org_client(emu)

    def walk(parent):
        found = [a["Id"] for a in org.list_accounts_for_parent(ParentId=parent)["Accounts"]]
        for ou in org.list_organizational_units_for_parent(ParentId=parent)["OrganizationalUnits"]:
            found += walk(ou["Id"])
        return found

    assert sorted(walk(info["ous"]["Workloads"])) == [SPOKE_1, SPOKE_2]
    assert sorted(walk(info["root_id"])) == sorted([HUB, SPOKE_1, SPOKE_2])
    # Each member got moto's OrganizationAccountAccessRole, in its own IAM.
    role = emu.client("iam", account=SPOKE_1).get_role(RoleName="OrganizationAccountAccessRole")
    assert role["Role"]["Arn"] == f"arn:aws:iam::{SPOKE_1}:role/OrganizationAccountAccessRole"
    # Seeding again without a reset is refused.
    with pytest.raises(urllib.error.HTTPError) as e:
        seed(emu)
    assert e.value.code == 400


def test_suspended_account_is_listed_with_its_status(emu):
    seed(emu)
    emu.control("POST", f"/organizations/accounts/{SPOKE_2}/status", {"status": "SUSPENDED"})
    accounts = {a["Id"]: a for a in org_client(emu).list_accounts()["Accounts"]}
    assert accounts[SPOKE_2]["Status"] == "SUSPENDED"
    assert accounts[SPOKE_2]["State"] == "SUSPENDED"
    assert accounts[SPOKE_1]["Status"] == "ACTIVE"
    active = sorted(i for i, a in accounts.items() if a["Status"] == "ACTIVE")
    assert active == [SPOKE_1, HUB]
    with pytest.raises(urllib.error.HTTPError) as e:
        emu.control("POST", f"/organizations/accounts/{SPOKE_2}/status", {"status": "GONE"})
    assert e.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as e:
        emu.control("POST", f"/organizations/accounts/{OUTSIDER}/status", {"status": "SUSPENDED"})
    assert e.value.code == 404


def test_list_accounts_pages_through_every_account_once(emu):
    members = [{"id": f"2000000000{i:02d}", "ou": "Big"} for i in range(45)]
    info = emu.control("POST", "/organizations/seed", {"management": HUB, "accounts": members})
    org = org_client(emu)
    seen, token, pages = [], None, 0
    while True:
        kw = {"MaxResults": 20}
        if token:
            kw["NextToken"] = token
        resp = org.list_accounts(**kw)
        assert len(resp["Accounts"]) <= 20
        seen += [a["Id"] for a in resp["Accounts"]]
        pages += 1
        token = resp.get("NextToken")
        if not token:
            break
    assert pages == 3
    assert sorted(seen) == sorted([HUB] + [m["id"] for m in members])
    # Default page (no MaxResults) is 20 too; the paginator walks the OU.
    assert len(org.list_accounts()["Accounts"]) == 20
    big = info["ous"]["Big"]
    got = [a["Id"] for p in org.get_paginator("list_accounts_for_parent").paginate(
        ParentId=big, PaginationConfig={"PageSize": 7}) for a in p["Accounts"]]
    assert sorted(got) == sorted(m["id"] for m in members)


def test_max_results_and_token_are_checked(emu):
    info = seed(emu)
    org = org_client(emu)
    for bad in (0, 21):
        with pytest.raises(ClientError) as e:
            unchecked(emu).list_accounts(MaxResults=bad)
        # Organizations reports model violations as InvalidInputException with a Reason.
        assert code(e) == "InvalidInputException"
        assert e.value.response["Reason"] == ("MIN_VALUE_EXCEEDED" if bad == 0 else "MAX_VALUE_EXCEEDED")
        assert "maxResults" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        org.list_accounts(NextToken="not-a-token")
    assert code(e) == "InvalidInputException"
    assert e.value.response["Reason"] == "INVALID_NEXT_TOKEN"
    # A token of one parent is not valid for another.
    token = org.list_accounts_for_parent(ParentId=info["ous"]["Workloads"], MaxResults=1)
    assert token["Accounts"] and "NextToken" not in token  # one account there: no next page
    page1 = org.list_accounts(MaxResults=1)
    with pytest.raises(ClientError) as e:
        org.list_accounts_for_parent(ParentId=info["root_id"], NextToken=page1["NextToken"])
    assert code(e) == "InvalidInputException"
    with pytest.raises(ClientError) as e:
        unchecked(emu).list_accounts_for_parent(ParentId="r-zz")
    assert code(e) == "InvalidInputException"  # model pattern: r- then 4-32 characters
    assert e.value.response["Reason"] == "INVALID_PATTERN"


def test_only_management_or_delegated_admin_may_list(emu):
    seed(emu, delegated_admin=SPOKE_1)
    delegated = org_client(emu, SPOKE_1).list_accounts()["Accounts"]
    assert sorted(a["Id"] for a in delegated) == sorted([HUB, SPOKE_1, SPOKE_2])
    with pytest.raises(ClientError) as e:
        org_client(emu, SPOKE_2).list_accounts()
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        org_client(emu, OUTSIDER).list_accounts()
    assert code(e) == "AWSOrganizationsNotInUseException"


def test_reset_forgets_membership(emu):
    seed(emu)
    emu.control("POST", "/reset")
    with pytest.raises(ClientError) as e:
        org_client(emu, SPOKE_1).describe_organization()
    assert code(e) == "AWSOrganizationsNotInUseException"
