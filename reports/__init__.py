"""Reports: scoring maths, report building and rendering, email composition and delivery.

Modules: ``mail`` (templates, ``make_message``, safe headers), ``outbox`` (queue and deliver,
SMTP and .eml transports), ``facts`` (what the daily report reads from the database) and
``notify`` (the daily due/overdue/resolved report, decided from those facts), ``scoring`` (the
pure scoring maths), ``distributions`` (the scores of numeric, date and choice forecasts),
``scored`` (which estimate a forecast is scored on: the one rule), ``question_scores`` (the
report's sections of numeric, date and choice questions), ``team`` (each forecaster's relative
Brier and the team's aggregates), ``build`` (calibration reports from the database), ``render``
(text, JSON, Markdown, HTML with inline SVG), ``charts`` (the geometry of those SVG charts). This
package imports ``predictions`` only, never ``resolvers`` or ``tracker``.
"""

__all__: list[str] = []
