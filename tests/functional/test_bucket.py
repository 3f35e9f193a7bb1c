"""The artifact bucket against moto, and the owner checks moto does not model via Stubber."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from plldb.bootstrap.bucket import bucket_exists, delete_bucket, ensure_bucket
from plldb.errors import AwsOperationError, ConfigurationError

ACCOUNT = "123456789012"
BUCKET = "plldb-core-infrastructure-eu-west-1-123456789012"


@pytest.fixture
def s3(moto_aws):
    return boto3.client("s3")


def test_created_private_encrypted_and_versioned(s3):
    assert ensure_bucket(s3, BUCKET, "eu-west-1", ACCOUNT) is True
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "eu-west-1"


def test_second_run_creates_nothing_and_repairs_drifted_settings(s3):
    ensure_bucket(s3, BUCKET, "eu-west-1", ACCOUNT)
    s3.put_object(Bucket=BUCKET, Key="keep.txt", Body=b"x")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    assert ensure_bucket(s3, BUCKET, "eu-west-1", ACCOUNT) is False
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert s3.get_object(Bucket=BUCKET, Key="keep.txt")["Body"].read() == b"x"


def test_us_east_1_gets_no_location_constraint(aws_env, monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        name = "plldb-core-infrastructure-us-east-1-123456789012"
        assert ensure_bucket(client, name, "us-east-1", ACCOUNT) is True
        assert bucket_exists(client, name, ACCOUNT)


def _stubbed_s3():
    client = boto3.client(
        "s3", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    return client, Stubber(client)


def test_a_name_owned_by_another_account_is_a_clear_error(aws_env):
    client, stubber = _stubbed_s3()
    stubber.add_client_error("head_bucket", "403", http_status_code=403)
    with stubber, pytest.raises(AwsOperationError, match="not owned by account"):
        ensure_bucket(client, BUCKET, "eu-west-1", ACCOUNT)


def test_a_name_taken_between_check_and_create_is_a_clear_error(aws_env):
    client, stubber = _stubbed_s3()
    stubber.add_client_error("head_bucket", "404", http_status_code=404)
    stubber.add_client_error("create_bucket", "BucketAlreadyExists", http_status_code=409)
    with stubber, pytest.raises(AwsOperationError, match="not owned by account"):
        ensure_bucket(client, BUCKET, "eu-west-1", ACCOUNT)


def test_other_s3_errors_and_expired_credentials_become_plldb_errors(aws_env):
    client, stubber = _stubbed_s3()
    stubber.add_client_error("head_bucket", "404", http_status_code=404)
    stubber.add_client_error("create_bucket", "InvalidBucketName", "bad name", http_status_code=400)
    with stubber, pytest.raises(AwsOperationError, match="InvalidBucketName"):
        ensure_bucket(client, BUCKET, "eu-west-1", ACCOUNT)
    client, stubber = _stubbed_s3()
    stubber.add_client_error("head_bucket", "ExpiredToken", http_status_code=400)
    with stubber, pytest.raises(ConfigurationError, match="expired"):
        ensure_bucket(client, BUCKET, "eu-west-1", ACCOUNT)


def test_delete_removes_every_version_and_delete_marker(s3):
    ensure_bucket(s3, BUCKET, "eu-west-1", ACCOUNT)
    for body in (b"1", b"2", b"3"):
        s3.put_object(Bucket=BUCKET, Key="a.zip", Body=body)
    s3.put_object(Bucket=BUCKET, Key="b.zip", Body=b"b")
    s3.delete_object(Bucket=BUCKET, Key="b.zip")  # leaves a delete marker
    seen = []
    assert delete_bucket(s3, BUCKET, ACCOUNT, on_deleted=seen.append) == 5
    assert sum(seen) == 5
    assert not bucket_exists(s3, BUCKET, ACCOUNT)
    assert delete_bucket(s3, BUCKET, ACCOUNT) is None  # already gone: not an error
