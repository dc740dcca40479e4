"""Arguments are checked against the task's annotations before anything is deferred."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests import sample_tasks
from worker.jobs import InvalidTaskArguments
from worker.tasks import mail, mail_enterprise, send_enterprise_email_task


@pytest.mark.parametrize(
    ("task", "kwargs", "message"),
    [
        (
            mail.send_reset_password_mail_task_when_account_not_exist,
            {"language": "en", "to": "a@x.test", "is_allow_register": "yes"},
            "'is_allow_register': input should be a valid boolean (got 'yes')",
        ),
        (
            mail.send_reset_password_mail_task,
            {"language": "en", "to": ["a@x.test"], "code": "1"},
            "'to': input should be a valid string (got ['a@x.test'])",
        ),
        (
            mail_enterprise.send_inner_email_task,
            {"to": ["a@x.test", 3], "subject": "s", "body": "b", "substitutions": {}},
            "'to.1': input should be a valid string (got 3)",
        ),
        (sample_tasks.add, {"x": 1.5, "y": 2}, "'x': input should be a valid integer"),
        (sample_tasks.add, {"x": True, "y": 2}, "'x': input should be a valid integer"),
        (sample_tasks.add, {"x": float("nan"), "y": 2}, "NaN and infinity are not JSON"),
    ],
)
def test_arguments_of_another_type_are_refused(
    task: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidTaskArguments, match=re.escape(message)):
        task.bind_arguments(kwargs=kwargs)


def test_a_secret_value_of_the_wrong_type_is_not_echoed() -> None:
    with pytest.raises(InvalidTaskArguments) as refused:
        mail.send_email_code_login_mail_task.bind_arguments(
            kwargs={"language": "en", "to": "a@x.test", "code": 271828}
        )

    assert "'code': input should be a valid string" in str(refused.value)
    assert "271828" not in str(refused.value)


def test_json_values_of_the_right_type_pass_unchanged() -> None:
    arguments = {"to": ["a@x.test"], "subject": "s", "body": "b", "substitutions": {"n": [1]}}

    assert send_enterprise_email_task.bind_arguments(kwargs=arguments) == arguments
    assert sample_tasks.create_tenant.bind_arguments(("n",)) == {"name": "n"}
    assert sample_tasks.create_tenant.bind_arguments(("n", None)) == {
        "name": "n",
        "follow_up": None,
    }


def test_the_validator_is_built_once_per_task() -> None:
    first = sample_tasks.add.bind_arguments((1, 2))

    assert first == {"x": 1, "y": 2}
    assert sample_tasks.add._argument_types is sample_tasks.add._argument_types
