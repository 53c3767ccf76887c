"""mme.train"""
