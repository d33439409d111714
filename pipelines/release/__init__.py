"""Release orchestration: a pure rollout plan, smoke tests, and a runner over a target adapter."""
