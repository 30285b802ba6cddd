"""Commissioning, noise and detector-effect studies (each module one study).

Every study is a process: it records numbers per amplifier (``amplifier.record``) or per
image (``image.record``) that ``waders ana`` writes under ``studies.<ProcessName>`` of the
summary JSON, and draws its plots with ``--save-plots``.
"""
