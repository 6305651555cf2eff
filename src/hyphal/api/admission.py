"""Admission endpoints: ``GET /api/v1/admission`` (is this node admitted, what does the gate
hold) and ``POST /api/v1/admission/revocations`` (gossip a revocation an admin signed)."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hyphal.api.errors import error, error_responses


class AdmissionSource(Protocol):
    private: bool

    def own_admission_problem(self) -> str | None: ...

    def submit_revocation(self, raw: bytes) -> str: ...


class GateView(Protocol):
    def on_probation(self) -> list[int]: ...


class RevocationBody(BaseModel):
    revocation: str = Field(description="The signed revocation, hex (made by 'hyphal revoke').")


def admission_router(members: AdmissionSource, gate: GateView) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/admission", tags=["Members"])
    async def admission_state() -> dict[str, Any]:
        """Whether this network has admission control, whether the network holds this node
        as admitted (``problem`` says why not), and the links still on probation."""
        problem = members.own_admission_problem()
        return {
            "private": members.private,
            "admitted": problem is None,
            "problem": problem,
            "probationLinks": gate.on_probation(),
        }

    @router.post("/admission/revocations", tags=["Members"], responses=error_responses(400, 409))
    async def revoke(body: RevocationBody) -> Any:
        """Check a revocation like any gossiped one and, if it holds, gossip it: the member's
        record and admission go everywhere, and its links are closed."""
        try:
            raw = bytes.fromhex(body.revocation)
        except ValueError:
            return error(400, "revocation must be hex")
        verdict = members.submit_revocation(raw)
        if verdict == "duplicate":
            return {"result": "already revoked"}
        if verdict == "malformed":
            return error(400, "the revocation is malformed (it is 133 bytes, hex)")
        if verdict != "accepted":
            return error(409, f"the revocation is refused: {verdict}")
        return {"result": "accepted"}

    return router
