"""FastAPI dependencies: what a route needs from the running app (settings, sampler, broker, database)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from tacore.api.broker_link import BrokerLink, Sampler
from tacore.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_sampler(request: Request) -> Sampler:
    sampler: Sampler = request.app.state.sampler
    return sampler


def get_link(request: Request) -> BrokerLink:
    link: BrokerLink = request.app.state.link
    return link


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
SamplerDep = Annotated[Sampler, Depends(get_sampler)]
LinkDep = Annotated[BrokerLink, Depends(get_link)]
EngineDep = Annotated[Engine, Depends(get_engine)]
