"""Tasks with Celery's calling API on top of procrastinate.

``@task(name=..., queue=...)`` registers a procrastinate task on :data:`worker.app.app` whose jobs
our worker runs through :func:`worker.jobs.execution.run_job` (outcome recorded with the task's
writes). The returned object is a procrastinate ``Task`` (``.defer()``, ``.configure()`` keep
working) that also has Celery's ``delay``, ``apply_async`` and ``s``; positional arguments map
onto the function's parameters as in Celery, and a job deferred inside
``worker.db.session_scope()`` (or with ``session=``) joins that transaction.

A function that declares a keyword-only ``uow`` parameter is handed the job's
:class:`~worker.jobs.uow.UnitOfWork` (it is not a job argument): what it writes through
``uow.session`` commits with the job's outcome, ``uow.checkpoint()`` commits progress early.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pydantic
from procrastinate import tasks
from sqlalchemy import orm
from typing_extensions import TypedDict

from worker import app as app_module
from worker import db
from worker.jobs import deferring, pinned, secrets
from worker.jobs.retry import Retry

if TYPE_CHECKING:
    from worker.jobs.results import AsyncResult
    from worker.jobs.uow import UnitOfWork

#: The parameter through which a task function receives its job's unit of work.
UOW_PARAMETER = "uow"
KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY


class InvalidTaskArguments(TypeError):
    """Arguments given to a task do not fit its signature or are not JSON."""


class CeleryTask(tasks.Task[Any, Any, Any]):
    """A procrastinate task with Celery's ``delay``/``apply_async``/``s``.

    ``lock`` and ``queueing_lock`` may be templates over the task's arguments, e.g.
    ``lock="document:{document_id}"``; they are filled in at defer time.
    """

    def __init__(self, run: Callable[..., Any], *, retry: Retry, **kwargs: Any) -> None:
        #: The function as written, called by the worker (and by calling the task directly).
        self.run = run
        #: The retry policy of its jobs.
        self.retry_policy = retry
        signature = inspect.signature(run)
        #: Whether the function takes the job's unit of work (keyword-only ``uow``).
        self.takes_uow = UOW_PARAMETER in signature.parameters
        if self.takes_uow and signature.parameters[UOW_PARAMETER].kind is not KEYWORD_ONLY:
            raise TypeError(f"{run.__qualname__}: {UOW_PARAMETER!r} must be keyword-only")
        #: The job's arguments: the function's parameters but ``uow``.
        self.signature = signature.replace(
            parameters=[p for name, p in signature.parameters.items() if name != UOW_PARAMETER]
        )
        super().__init__(run, retry=retry, **kwargs)

    def call(self, uow: UnitOfWork, arguments: Mapping[str, Any]) -> Any:
        """Call the function with a job's arguments (and ``uow``, if it takes it)."""
        if self.takes_uow:
            return self.run(**arguments, uow=uow)
        return self.run(**arguments)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function here and now, like calling a Celery task: what it writes commits
        when it returns (in the open ``session_scope``, if any)."""
        if not self.takes_uow:
            return self.run(*args, **kwargs)
        from worker.jobs.uow import UnitOfWork

        with UnitOfWork() as uow, db.joined(lambda: uow.session):
            result = self.run(*args, **kwargs, uow=uow)
            uow.checkpoint()
        return result

    @property
    def full_path(self) -> str:
        return f"{self.run.__module__}.{self.run.__qualname__}"

    def bind_arguments(
        self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Map Celery-style ``args``/``kwargs`` onto the function's parameters and check them
        against its type annotations, strictly, as JSON (``"yes"`` is not a ``bool``, a list
        is not a ``str``).

        Raises
        ------
        InvalidTaskArguments
            Missing, unexpected or duplicate arguments, a value that is not JSON, or a value
            of another type than its parameter's annotation.
        """
        try:
            bound = self.signature.bind(*args, **(kwargs or {}))
        except TypeError as exc:
            raise InvalidTaskArguments(f"{self.name}: {exc}") from None
        arguments = dict(bound.arguments)
        try:
            payload = json.dumps(arguments, allow_nan=False)
        except (TypeError, ValueError):
            raise self._not_json(arguments) from None
        try:
            self._argument_types.validate_json(payload)
        except pydantic.ValidationError as exc:
            raise InvalidTaskArguments(self._describe_type_errors(exc)) from None
        return arguments

    @functools.cached_property
    def _argument_types(self) -> pydantic.TypeAdapter[Any]:
        """A strict validator of the arguments' JSON, built once, on the first defer."""
        try:
            hints = typing.get_type_hints(self.run)
        except (NameError, TypeError):  # an annotation that does not resolve: checked as Any
            hints = {}
        fields = {
            name: _checkable(hints.get(name, Any))
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
            else Any
            for name, parameter in self.signature.parameters.items()
        }
        arguments = _typed_dict(f"{self.run.__name__}_arguments", fields, total=False)
        arguments.__pydantic_config__ = pydantic.ConfigDict(strict=True)
        return pydantic.TypeAdapter(arguments)

    def _not_json(self, arguments: Mapping[str, Any]) -> InvalidTaskArguments:
        for key, value in arguments.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                why = " (NaN and infinity are not JSON)" if isinstance(value, float) else ""
                return InvalidTaskArguments(
                    f"{self.name}: argument {key!r} is a {type(value).__name__}, not a JSON "
                    f"value{why}"
                )
        return InvalidTaskArguments(f"{self.name}: arguments are not JSON")

    def _describe_type_errors(self, exc: pydantic.ValidationError) -> str:
        hidden = secrets.names_for(self.name)
        problems = []
        for error in exc.errors():
            path = ".".join(str(part) for part in error["loc"])
            shown = "" if error["loc"][0] in hidden else f" (got {_short_repr(error['input'])})"
            problems.append(f"argument {path!r}: {error['msg'].lower()}{shown}")
        return f"{self.name}: " + "; ".join(problems)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Defer a job with these arguments; return its result handle."""
        return self.apply_async(args=args, kwargs=kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime.datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        lock: str | None = None,
        queueing_lock: str | None = None,
        session: orm.Session | None = None,
    ) -> AsyncResult:
        """Defer a job, Celery-style.

        Parameters
        ----------
        args, kwargs:
            The task's arguments, mapped onto its parameters as Celery does.
        countdown:
            Seconds from now before the job may start.
        eta:
            Time before which the job may not start (a naive datetime is taken as UTC).
        queue, priority:
            Override the task's queue and priority (higher runs first).
        lock, queueing_lock:
            Override the task's lock templates.
        session:
            Join this session's transaction (default: the open ``session_scope``, if any).

        Raises
        ------
        procrastinate.exceptions.AlreadyEnqueued
            A job with the same queueing lock is already waiting; the caller's transaction is
            left usable (the failed insert is rolled back to a savepoint).
        """
        from worker.jobs.results import AsyncResult

        arguments = self.bind_arguments(args or (), kwargs)
        options = self.defer_options(
            arguments, countdown=countdown, eta=eta, queue=queue, priority=priority,
            lock=lock, queueing_lock=queueing_lock,
        )  # fmt: skip
        job_id = deferring.defer(self, arguments, options, session=session)
        return AsyncResult(job_id)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature: this task with arguments, to defer later (e.g. in a ``group``)."""
        return Signature(task=self, args=args, kwargs=kwargs)

    def defer_options(
        self,
        arguments: Mapping[str, Any],
        *,
        countdown: float | None = None,
        eta: datetime.datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        lock: str | None = None,
        queueing_lock: str | None = None,
    ) -> dict[str, Any]:
        """procrastinate ``configure()`` options for one job of this task."""
        options: dict[str, Any] = {
            "queue": queue or self.queue,
            "priority": self.priority if priority is None else priority,
            "lock": self._fill(lock or self.lock, arguments),
            "queueing_lock": self._fill(queueing_lock or self.queueing_lock, arguments),
        }
        if countdown is not None and eta is not None:
            raise ValueError(f"{self.name}: pass countdown or eta, not both")
        if countdown is not None:
            options["schedule_in"] = {"seconds": countdown}
        if eta is not None:
            options["schedule_at"] = eta if eta.tzinfo else eta.replace(tzinfo=datetime.UTC)
        return options

    def _fill(self, template: str | None, arguments: Mapping[str, Any]) -> str | None:
        if template is None:
            return None
        try:
            return template.format(**arguments)
        except KeyError as exc:
            raise InvalidTaskArguments(
                f"{self.name}: lock template {template!r} needs argument {exc.args[0]!r}"
            ) from None


#: ``TypedDict`` called with fields known at run time (mypy checks only literal calls).
_typed_dict: Any = TypedDict


def _checkable(annotation: Any) -> Any:
    """``annotation`` if pydantic can check it, else ``Any`` (a type it does not know)."""
    try:
        pydantic.TypeAdapter(annotation)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        return Any
    return annotation


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Signature:
    """A task with its arguments, not deferred yet (Celery's ``task.s(...)``)."""

    def __init__(self, *, task: CeleryTask, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        self.task = task
        self.arguments = task.bind_arguments(args, kwargs)

    def apply_async(self, **options: Any) -> AsyncResult:
        """Defer it now; ``options`` as in :meth:`CeleryTask.apply_async`."""
        return self.task.apply_async(kwargs=self.arguments, **options)

    delay = apply_async

    def __repr__(self) -> str:
        return f"{self.task.name}.s(**{self.arguments!r})"


def task(
    *,
    name: str,
    queue: str,
    retry: Retry,
    lock: str | None = None,
    queueing_lock: str | None = None,
    priority: int = 0,
    aliases: list[str] | None = None,
    secret_args: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], CeleryTask]:
    """Register a function as a task of :data:`worker.app.app`.

    Parameters
    ----------
    name:
        Stable name (``"<area>.<action>"``) stored with every job; never derived from the module.
    queue:
        Default queue (a constant of ``worker.queues``).
    retry:
        Retry policy, always stated (``NO_RETRY`` for none): which failures run the job again,
        how often and after how long. Lost runs and broken database connections re-run
        whatever it says.
    lock, queueing_lock:
        Default locks, possibly templates over the arguments (``"document:{document_id}"``).
    priority:
        Default priority (higher runs first).
    aliases:
        Former names, so jobs queued under them still run.
    secret_args:
        Arguments (codes, tokens) masked in logs and in the jobs table once the job has ended.
    """

    def register(func: Callable[..., Any]) -> CeleryTask:
        app = app_module.app
        created = CeleryTask(
            func,
            blueprint=app,
            name=name,
            aliases=aliases,
            queue=queue,
            retry=retry,
            lock=lock,
            queueing_lock=queueing_lock,
            priority=priority,
        )
        pinned.register_task(app, created)
        secrets.register(name, secret_args)
        functools.update_wrapper(created, func, updated=())
        return created

    return register
