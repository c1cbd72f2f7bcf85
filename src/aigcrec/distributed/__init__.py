"""aigcrec.distributed"""
