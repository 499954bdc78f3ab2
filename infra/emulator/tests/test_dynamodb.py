"""The run ledger's DynamoDB calls (shared/src/aws/ledger.rs) as the emulator answers them:
checked against the API model like every other service, and the conditional writes the
ledger's "once" rests on (PutItem if absent, a transaction cancelled with its reasons, an
update conditional on a counter)."""
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
import boto3

TABLE = "ami-lifecycle-runs"


@pytest.fixture
def ddb(emu):
    client = emu.client("dynamodb")
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "run", "AttributeType": "S"},
                              {"AttributeName": "item", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "run", "KeyType": "HASH"},
                   {"AttributeName": "item", "KeyType": "RANGE"}])
    return client


def run_row(run="r1", total=2):
    return {"run": {"S": run}, "item": {"S": "#run"}, "total": {"N": str(total)},
            "remaining": {"N": str(total)}, "done": {"N": "0"}}


def test_a_request_outside_the_model_is_refused(emu, ddb):
    raw = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=emu.url,
                       aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                       config=Config(parameter_validation=False,
                                     retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as e:  # Limit: min 1 in the model
        raw.query(TableName=TABLE, KeyConditionExpression="#r = :r", Limit=0,
                  ExpressionAttributeNames={"#r": "run"},
                  ExpressionAttributeValues={":r": {"S": "r1"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "limit" in e.value.response["Error"]["Message"].lower()


def test_the_run_row_is_put_once(ddb):
    ddb.put_item(TableName=TABLE, Item=run_row(), ConditionExpression="attribute_not_exists(#r)",
                 ExpressionAttributeNames={"#r": "run"})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=TABLE, Item=run_row(), ConditionExpression="attribute_not_exists(#r)",
                     ExpressionAttributeNames={"#r": "run"})
    assert e.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def record(item, state="done"):
    return [
        {"Put": {"TableName": TABLE,
                 "Item": {"run": {"S": "r1"}, "item": {"S": item}, "state": {"S": state}},
                 "ConditionExpression": "attribute_not_exists(#i) OR #s = :pending",
                 "ExpressionAttributeNames": {"#i": "item", "#s": "state"},
                 "ExpressionAttributeValues": {":pending": {"S": "pending"}}}},
        {"Update": {"TableName": TABLE, "Key": {"run": {"S": "r1"}, "item": {"S": "#run"}},
                    "UpdateExpression": "ADD #rem :minus, #d :one",
                    "ConditionExpression": "attribute_exists(#r)",
                    "ExpressionAttributeNames": {"#rem": "remaining", "#d": state, "#r": "run"},
                    "ExpressionAttributeValues": {":minus": {"N": "-1"}, ":one": {"N": "1"}}}},
    ]


def test_an_item_is_recorded_once_with_the_counters(ddb):
    ddb.put_item(TableName=TABLE, Item=run_row())
    ddb.transact_write_items(TransactItems=record("a/us-east-1"))
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=record("a/us-east-1"))
    err = e.value.response
    assert err["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r.get("Code") for r in err.get("CancellationReasons", [])]
    assert reasons[:2] == ["ConditionalCheckFailed", "None"], reasons
    row = ddb.get_item(TableName=TABLE, Key={"run": {"S": "r1"}, "item": {"S": "#run"}},
                       ConsistentRead=True)["Item"]
    assert (row["remaining"]["N"], row["done"]["N"]) == ("1", "1"), "counted once"


def test_the_summary_is_claimed_once_when_nothing_remains(ddb):
    ddb.put_item(TableName=TABLE, Item=run_row(total=1))

    def claim():
        ddb.update_item(TableName=TABLE, Key={"run": {"S": "r1"}, "item": {"S": "#run"}},
                        UpdateExpression="SET #sum = :at",
                        ConditionExpression="#rem = :zero AND attribute_not_exists(#sum)",
                        ExpressionAttributeNames={"#sum": "summarized", "#rem": "remaining"},
                        ExpressionAttributeValues={":at": {"S": "now"}, ":zero": {"N": "0"}})

    with pytest.raises(ClientError):
        claim()  # an item remains
    ddb.transact_write_items(TransactItems=record("a/us-east-1"))
    claim()
    with pytest.raises(ClientError) as e:
        claim()
    assert e.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
