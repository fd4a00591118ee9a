"""Agents: the code a worker runs for a job, registered by name (`@agent`). Built in: demo, llm."""

from hiveq.agents.registry import AgentContext, agent, get_agent, load_modules, registered_agents

__all__ = ["AgentContext", "agent", "get_agent", "load_modules", "registered_agents"]
