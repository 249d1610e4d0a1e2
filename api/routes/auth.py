"""Registration, login, logout and the current user."""

from __future__ import annotations

import hashlib

from api.auth import IssuedToken
from api.clock import utc
from api.errors import NotFound, RateLimited, Unauthorized
from api.http.endpoint import Auth, Call, Operation, endpoint
from api.ratelimit import Mode
from api.schemas.users import LoginRequest, RegisterRequest, Token, User
from api.store import users


@endpoint(
    Operation(
        "register",
        "Create an account",
        "auth",
        status=201,
        response=User,
        body=RegisterRequest,
        errors=(409,),
        description="Passwords are stored as argon2id hashes. An e-mail may register once "
        "(case-insensitively); a second attempt gets 409.",
    )
)
async def register(call: Call) -> User:
    body = call.body_as(RegisterRequest)
    services = call.services
    password_hash = await services.passwords.hash(body.password)
    row = await users.create(
        services.db, email=str(body.email), name=body.name, password_hash=password_hash
    )
    services.metrics.registrations.inc()
    return User.model_validate(row)


@endpoint(
    Operation(
        "login",
        "Exchange e-mail and password for a bearer token",
        "auth",
        response=Token,
        body=LoginRequest,
        errors=(401,),
        description="Wrong e-mail and wrong password get the same 401. Attempts are limited per "
        "client address and failed attempts per e-mail (429 with `Retry-After`).",
    )
)
async def login(call: Call) -> Token:
    body = call.body_as(LoginRequest)
    services = call.services
    metrics = services.metrics.login_attempts
    client = call.request.client.host if call.request.client else "unknown"
    email = str(body.email).lower()
    email_subject = hashlib.sha256(email.encode()).hexdigest()[:32]  # no addresses in Redis keys
    limits = services.limits
    for limit, subject, mode in (
        (limits.login_per_ip, client, Mode.HIT),
        (limits.login_per_email, email_subject, Mode.CHECK),
    ):
        decision = await services.limiter.apply(limit, subject, mode)
        if not decision.allowed:
            metrics.labels("rate_limited").inc()
            raise RateLimited(
                "too many login attempts; wait and retry", retry_after=decision.retry_after
            )
    row = await users.by_email(services.db, email)
    if row is None:
        await services.passwords.verify(None, body.password)
    stored_hash = row["password_hash"] if row is not None else None
    # an unknown e-mail still pays for one argon2 verification: no timing hint either
    if row is None or not await services.passwords.verify(stored_hash, body.password):
        await services.limiter.apply(limits.login_per_email, email_subject, Mode.ADD)
        metrics.labels("failure").inc()
        raise Unauthorized("wrong email or password")
    assert stored_hash is not None
    if services.passwords.needs_rehash(stored_hash):
        await users.set_password_hash(
            services.db, row["id"], await services.passwords.hash(body.password)
        )
    await services.limiter.reset(limits.login_per_email, email_subject)
    issued: IssuedToken = await services.auth.issue(row["id"])
    call.request.state.user_id = row["id"]
    metrics.labels("success").inc()
    return Token(
        access_token=issued.token,
        expires_at=utc(issued.expires_at),
        expires_in=int(issued.expires_at - services.clock.now()),
    )


@endpoint(
    Operation(
        "logout",
        "Revoke the bearer token of this request",
        "auth",
        status=204,
        auth=Auth.USER,
    )
)
async def logout(call: Call) -> None:
    await call.services.auth.revoke(call.user)


@endpoint(
    Operation(
        "getCurrentUser",
        "The signed-in user",
        "users",
        response=User,
        auth=Auth.USER,
        errors=(404,),
    )
)
async def me(call: Call) -> User:
    row = await users.by_id(call.services.db, call.user.user_id)
    if row is None:  # deleted between authentication and now
        raise NotFound("the user no longer exists")
    return User.model_validate(row)
