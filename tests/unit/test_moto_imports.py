"""The region look-ups answered during moto's import are botocore's own answers."""

from __future__ import annotations

import boto3
import boto3.session
import pytest

from plldb.local.moto_imports import _region_lookups_shared


@pytest.mark.parametrize(
    ("service", "partition"),
    [("ec2", "aws"), ("ec2", "aws-us-gov"), ("ec2", "aws-cn"), ("lambda", "aws")],
)
def test_shared_lookups_answer_what_a_new_session_answers(service, partition):
    expected = boto3.Session().get_available_regions(service, partition_name=partition)
    with _region_lookups_shared():
        assert boto3.Session().get_available_regions(service, partition_name=partition) == expected
    assert expected  # each of these partitions has regions for the service


def test_the_lookup_is_put_back_after_the_import():
    original = boto3.session.Session.get_available_regions
    with _region_lookups_shared():
        assert boto3.session.Session.get_available_regions is not original
    assert boto3.session.Session.get_available_regions is original
