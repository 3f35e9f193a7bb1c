"""What instrumentation changes on a function and how it is undone: pure, no AWS."""

from __future__ import annotations

import copy
import importlib.util

import pytest

from plldb.resources import cloudformation_dir


def _load():
    path = cloudformation_dir() / "lambda_functions" / "_instrumentation.py"
    spec = importlib.util.spec_from_file_location("_instrumentation_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plan = _load()

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:orders-api"
PLLDB_LAYER = "arn:aws:lambda:eu-west-1:123456789012:layer:plldb-debugger:7"
OWN_LAYER = "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3:5"
SESSION = plan.session_variables(
    "0123456789abcdef", "PLLDBSessions", "PLLDBDebugger", "https://x/live", "arn:role"
)


def config(variables=None, layers=(), timeout=3, **extra):
    """A get_function_configuration answer, with Layers as Lambda gives them."""
    answer = {
        "FunctionName": "orders-api",
        "FunctionArn": ARN,
        "Runtime": "python3.12",
        "Timeout": timeout,
        "Layers": [{"Arn": arn, "CodeSize": 10} for arn in layers],
        **extra,
    }
    if variables is not None:
        answer["Environment"] = {"Variables": variables}
    return answer


def applied(configuration, update):
    """The configuration Lambda would hold after update_function_configuration(**update)."""
    after = copy.deepcopy(configuration)
    after["Layers"] = [{"Arn": arn, "CodeSize": 10} for arn in update["Layers"]]
    after["Timeout"] = update["Timeout"]
    variables = update["Environment"]["Variables"]
    if variables:
        after["Environment"] = {"Variables": dict(variables)}
    else:
        after.pop("Environment", None)  # Lambda drops an empty map from its answers
    return after


def _visible(configuration):
    return (
        configuration.get("Environment"),
        [layer["Arn"] for layer in configuration.get("Layers", [])],
        configuration["Timeout"],
    )


CASES = {
    "no variables": config(),
    "empty variables": config({}),
    "own variables": config({"TABLE": "orders", "EMPTY": "", "UNICODE": "é ✓", "N": "0"}),
    "own layers": config({"A": "1"}, layers=[OWN_LAYER, OWN_LAYER.replace(":5", ":6")]),
    "own exec wrapper": config({"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-handler", "B": "2"}),
    "already 900 s": config({"A": "1"}, timeout=900),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_restoring_the_recorded_original_gives_the_configuration_back_exactly(case):
    original = CASES[case]
    recorded = plan.recorded_original(original)
    instrumented = applied(
        original, plan.instrumented_configuration(recorded, SESSION, PLLDB_LAYER)
    )
    restored = applied(instrumented, plan.restored_configuration(recorded))
    assert _visible(restored) == _visible(original) or (
        case == "empty variables" and _visible(restored) == (None, [], 3)
    )
    if "Environment" in original and original["Environment"]["Variables"]:
        assert restored["Environment"]["Variables"] == original["Environment"]["Variables"]
        assert list(restored["Environment"]["Variables"]) == list(
            original["Environment"]["Variables"]
        )


def test_recorded_original_keeps_variables_layers_timeout_and_arn():
    original = config({"TABLE": "orders"}, layers=[OWN_LAYER], timeout=30)
    assert plan.recorded_original(original) == {
        "FunctionArn": ARN,
        "Role": "",
        "Layers": [OWN_LAYER],
        "Timeout": 30,
        "Environment": {"TABLE": "orders"},
    }


def test_recorded_original_has_no_environment_when_the_function_has_none():
    assert "Environment" not in plan.recorded_original(config())
    assert plan.recorded_original(config({}))["Environment"] == {}


def test_the_recorded_original_is_a_copy():
    original = config({"A": "1"})
    recorded = plan.recorded_original(original)
    recorded["Environment"]["A"] = "changed"
    assert original["Environment"]["Variables"] == {"A": "1"}


def test_instrumented_configuration_appends_the_layer_and_sets_the_wrapper_and_session():
    recorded = plan.recorded_original(config({"TABLE": "orders"}, layers=[OWN_LAYER]))
    update = plan.instrumented_configuration(recorded, SESSION, PLLDB_LAYER)
    assert update["Layers"] == [OWN_LAYER, PLLDB_LAYER]
    assert update["Timeout"] == 900
    assert update["Environment"]["Variables"] == {
        "TABLE": "orders",
        **SESSION,
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/bootstrap",
        "PLLDB_ORIGINAL_TIMEOUT": str(recorded["Timeout"]),
    }
    assert "PLLDB_ORIGINAL_EXEC_WRAPPER" not in update["Environment"]["Variables"]


def test_a_function_without_variables_gets_only_plldbs():
    update = plan.instrumented_configuration(plan.recorded_original(config()), SESSION, PLLDB_LAYER)
    assert update["Environment"]["Variables"] == {
        **SESSION,
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/bootstrap",
        "PLLDB_ORIGINAL_TIMEOUT": "3",
    }


def test_the_functions_own_exec_wrapper_is_kept_for_the_relay_to_chain():
    recorded = plan.recorded_original(config({"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-handler"}))
    variables = plan.instrumented_configuration(recorded, SESSION, PLLDB_LAYER)["Environment"][
        "Variables"
    ]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bin/bootstrap"
    assert variables["PLLDB_ORIGINAL_EXEC_WRAPPER"] == "/opt/otel-handler"


def test_the_layer_is_not_duplicated_and_an_older_plldb_layer_is_replaced():
    older = PLLDB_LAYER.replace(":7", ":6")
    for layers in ([PLLDB_LAYER], [older], [OWN_LAYER, older]):
        recorded = plan.recorded_original(config(layers=layers))
        update = plan.instrumented_configuration(recorded, SESSION, PLLDB_LAYER)
        assert update["Layers"].count(PLLDB_LAYER) == 1
        assert older not in update["Layers"]
        assert update["Layers"][-1] == PLLDB_LAYER


def test_five_layers_leave_no_room():
    layers = [f"arn:aws:lambda:eu-west-1:1:layer:l{i}:1" for i in range(5)]
    recorded = plan.recorded_original(config(layers=layers))
    with pytest.raises(plan.TooManyLayers, match="5 layers"):
        plan.instrumented_configuration(recorded, SESSION, PLLDB_LAYER)
    update = plan.instrumented_configuration(
        plan.recorded_original(config(layers=layers[:4])), SESSION, PLLDB_LAYER
    )
    assert len(update["Layers"]) == 5


def test_instrumenting_does_not_change_the_recorded_original():
    recorded = plan.recorded_original(config({"A": "1"}, layers=[OWN_LAYER]))
    before = copy.deepcopy(recorded)
    plan.instrumented_configuration(recorded, SESSION, PLLDB_LAYER)
    assert recorded == before


def test_restored_configuration_of_a_function_without_variables_clears_them():
    recorded = {"FunctionArn": ARN, "Layers": [], "Timeout": 3}
    assert plan.restored_configuration(recorded) == {
        "Layers": [],
        "Environment": {"Variables": {}},
        "Timeout": 3,
    }


def test_restored_configuration_ignores_extra_recorded_fields():
    recorded = {"FunctionArn": ARN, "Layers": [OWN_LAYER], "Timeout": 7, "LogicalId": "Orders"}
    assert plan.restored_configuration(recorded)["Layers"] == [OWN_LAYER]


def test_a_leftover_instrumentation_is_recorded_without_plldbs_changes():
    original = config({"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-handler", "A": "1"}, [OWN_LAYER])
    recorded = plan.recorded_original(original)
    older_layer = PLLDB_LAYER.replace(":7", ":6")
    leftover = applied(original, plan.instrumented_configuration(recorded, SESSION, older_layer))
    assert plan.is_instrumented(leftover)
    again = plan.recorded_original(leftover, PLLDB_LAYER)
    assert again["Environment"] == original["Environment"]["Variables"]
    assert again["Layers"] == [OWN_LAYER]
    assert again["Timeout"] == original["Timeout"]  # kept on the function as PLLDB_ORIGINAL_TIMEOUT


def test_is_instrumented_needs_the_wrapper_and_a_session():
    assert not plan.is_instrumented(config())
    assert not plan.is_instrumented(config({"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/bootstrap"}))
    assert plan.is_instrumented(
        config({"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/bootstrap", "PLLDB_SESSION_ID": "x"})
    )


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        ("python3.12", True),
        ("python3.9", True),
        ("nodejs20.x", False),
        ("java21", False),
        (None, False),
        ("", False),
    ],
)
def test_is_python(runtime, expected):
    assert plan.is_python(runtime) is expected


@pytest.mark.parametrize(
    ("globs", "expected"),
    [
        (None, True),
        ([], True),
        ([""], True),
        (["orders-*"], True),
        (["Orders*"], True),  # the logical id
        (["orders"], False),
        (["ORDERS-API"], False),  # case matters, as in Lambda's names
        (["payments-*", "*-api"], True),
        (["Payments*"], False),
    ],
)
def test_matches_names_and_logical_ids(globs, expected):
    assert plan.matches("orders-api", "OrdersFunction", globs) is expected


def test_matches_without_a_logical_id():
    assert plan.matches("orders-api", None, ["orders-*"])
    assert not plan.matches("orders-api", None, ["Orders*"])


def test_timeout_note_and_progress_message():
    assert plan.timeout_note(3) == (
        "timeout raised from 3 s to 900 s; API Gateway REST callers still time out after 29 s"
    )
    assert plan.timeout_note(900) is None
    assert plan.progress_message("instrumented", 7, 12, "orders-api") == (
        "instrumented 7/12: orders-api"
    )
    assert plan.progress_message("skipped", 1, 2, "x", "why") == "skipped 1/2: x (why)"


def test_plldbs_own_functions_are_recognised():
    assert plan.is_plldb_function("plldb-websocket-connect")
    assert not plan.is_plldb_function("orders-plldb-api")


def test_role_names_and_the_roles_a_restore_releases():
    assert plan.role_name("arn:aws:iam::123456789012:role/service/app-OrdersRole-1") == (
        "app-OrdersRole-1"
    )
    assert plan.role_name("arn:aws:iam::123456789012:user/alice") is None
    assert plan.role_name("") is None
    shared, own = "arn:aws:iam::1:role/shared", "arn:aws:iam::1:role/own"
    restored = [{"Role": shared}, {"Role": own}, {"Role": ""}]
    assert plan.roles_to_release(restored, [{"Role": shared}]) == [own]
    assert plan.roles_to_release(restored, []) == [own, shared]


def test_variables_lambda_will_not_show_are_refused_before_anything_is_recorded():
    configuration = {
        "FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:orders",
        "Role": "arn:aws:iam::123456789012:role/orders",
        "Timeout": 30,
        "KMSKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/k1",
        "Environment": {"Error": {"ErrorCode": "AccessDeniedException", "Message": "no"}},
    }
    with pytest.raises(plan.UnreadableVariables, match=r"kms:Decrypt on arn:aws:kms:.*key/k1"):
        plan.recorded_original(configuration)
    with pytest.raises(plan.CannotInstrument):
        plan.check_readable(configuration)
    readable = {**configuration, "Environment": {"Variables": {"A": "1"}}}
    plan.check_readable(readable)  # no error
    assert plan.recorded_original(readable)["Environment"] == {"A": "1"}
