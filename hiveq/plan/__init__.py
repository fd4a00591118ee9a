"""Planners turn a task request into a graph of subtasks; importing this package registers the
built-in ones (`template`, `explicit`, `llm`)."""

from hiveq.plan.explicit import ExplicitPlanner
from hiveq.plan.llm import LLMPlanner
from hiveq.plan.planner import PLANNERS, Planner, get_planner, register_planner
from hiveq.plan.template import TemplatePlanner

register_planner(TemplatePlanner())
register_planner(ExplicitPlanner())
register_planner(LLMPlanner())

__all__ = ["PLANNERS", "Planner", "get_planner", "register_planner"]
