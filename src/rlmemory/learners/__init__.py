"""Routing learners: Q-learning, policy gradient and linear contextual bandits."""
