"""mme.io"""
