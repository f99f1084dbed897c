"""Agents: model registry, echo model, tools, agent factory, executor cache, history codec."""
