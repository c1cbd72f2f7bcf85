"""aigcrec.service"""
