"""mme.objectives"""
