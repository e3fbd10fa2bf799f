//! `report.html`: the backtest as a self-contained page — tables, and charts drawn with plotters
//! as inline SVG (ROC, reliability, churn by risk decile, recall@10 against the baselines,
//! send-time heatmaps for the population and sample contacts). Each model has one colour in every
//! chart; charts that are not about models (deciles, heatmaps) use colours no model uses; every
//! table and chart says in a sentence what it measures and which way is better.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::backtest::{Backtest, Trained};
use crate::metrics::{decile_rates, reliability, roc_curve};

/// The colour of a model, the same in every chart: augur blue, each baseline its own hue.
fn model_color(name: &str) -> RGBColor {
    match name {
        "augur" => RGBColor(31, 119, 180),
        "recency" => RGBColor(255, 127, 14),
        "rfm_logistic" => RGBColor(44, 160, 44),
        "own_most_bought" => RGBColor(148, 103, 189),
        "popularity" => RGBColor(140, 86, 75),
        "global_profile" => RGBColor(227, 119, 194),
        _ => RGBColor(127, 127, 127),
    }
}

/// Bars that are not models (risk deciles): a slate no model uses.
const NEUTRAL: RGBColor = RGBColor(82, 96, 109);
/// The darkest heatmap cell (white is zero): a purple no model uses.
const HEAT: RGBColor = RGBColor(84, 39, 143);

/// The heatmap colour of a share of the maximum, 0 (white) to 1 ([`HEAT`]).
fn heat(shade: f64) -> RGBColor {
    let shade = shade.clamp(0.0, 1.0);
    let mix = |c: u8| (255.0 - shade * (255.0 - f64::from(c))).round() as u8;
    RGBColor(mix(HEAT.0), mix(HEAT.1), mix(HEAT.2))
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

type Chart = Result<String, String>;

fn svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Chart {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn lines(
    title: &str,
    x: &str,
    y: &str,
    series: &[(String, Vec<(f64, f64)>)],
    diagonal: bool,
) -> Chart {
    svg(480, 360, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x)
            .y_desc(y)
            .draw()
            .map_err(|e| e.to_string())?;
        if diagonal {
            chart
                .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], &BLACK.mix(0.3)))
                .map_err(|e| e.to_string())?;
        }
        for (name, points) in series {
            let color = model_color(name);
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Bars of `values` (label, height), coloured by `color` of the label.
fn bars(title: &str, y: &str, values: &[(String, f64)], color: impl Fn(&str) -> RGBColor) -> Chart {
    let max = values.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1e-9) * 1.15;
    svg(480, 320, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..values.len() as f64, 0f64..max)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = values.iter().map(|(n, _)| n.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(values.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 {
                    names.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y)
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, (name, v))| {
                Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)],
                    color(name).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A week of local hours (rows Monday to Sunday, columns 0–23 h), each cell shaded by its share
/// of the week's engagement, with the scale beside it.
fn heatmap(title: &str, profile: &[f64]) -> Chart {
    let total: f64 = profile.iter().sum();
    let share: Vec<f64> = profile
        .iter()
        .map(|p| if total > 0.0 { p / total } else { 0.0 })
        .collect();
    let max = share.iter().copied().fold(0.0, f64::max).max(1e-12);
    svg(560, 250, |root| {
        let (cells, scale) = root.split_horizontally(480);
        let mut chart = ChartBuilder::on(&cells)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..24f64, 0f64..7f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(13)
            .x_label_formatter(&|h| format!("{h:.0}"))
            .x_desc("hour of day (local)")
            .y_labels(15)
            .y_label_formatter(&|d| {
                // Rows are drawn Monday on top; label each row at its centre.
                let row = d.floor() as usize;
                if (d - d.floor() - 0.5).abs() < 0.01 && row < 7 {
                    DAYS[6 - row].to_string()
                } else {
                    String::new()
                }
            })
            .y_desc("day")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(share.iter().enumerate().map(|(how, p)| {
                let (day, hour) = ((how / 24) as f64, (how % 24) as f64);
                Rectangle::new(
                    [(hour, 6.0 - day), (hour + 1.0, 7.0 - day)],
                    heat(p / max).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        color_scale(&scale, max)
    })
}

/// The heatmap's scale: white at 0 up to [`HEAT`] at `max`, labelled in percent of the week.
fn color_scale(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    max: f64,
) -> Result<(), String> {
    let mut scale = ChartBuilder::on(area)
        .margin_top(30)
        .margin_bottom(43)
        .margin_right(4)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..1f64, 0f64..max * 100.0)
        .map_err(|e| e.to_string())?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&|v| format!("{v:.1}%"))
        .y_desc("share of the week")
        .draw()
        .map_err(|e| e.to_string())?;
    const STEPS: usize = 40;
    scale
        .draw_series((0..STEPS).map(|i| {
            let (lo, hi) = (i as f64 / STEPS as f64, (i + 1) as f64 / STEPS as f64);
            Rectangle::new(
                [(0.0, lo * max * 100.0), (1.0, hi * max * 100.0)],
                heat((lo + hi) / 2.0).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

const CHURN_NOTE: &str = "Churn is placing no order within the horizon after the held-out window starts. \
ROC AUC is the chance that a contact who churned is ranked riskier than one who did not (0.5 is a coin flip; higher is better); \
PR AUC is the precision over all recall levels (higher is better); Brier and log loss say how close the probabilities are to what happened (lower is better); \
top-10% lift is how many times the average churn rate the riskiest tenth shows (higher is better).";
const RECS_NOTE: &str = "Each contact's ten best products as of the cut-off, against what it bought in the held-out window. \
recall@10 is the share of those purchases among the ten; precision@10 the share of the ten that were bought; NDCG@10 also rewards hits near the top; \
hit rate@10 is the share of contacts with at least one hit. Higher is better for all four.";
const NEW_ITEMS_NOTE: &str =
    " Only products new to the contact count here: the harder task of discovery.";
const SEND_NOTE: &str = "How well each profile predicted the local hour of the engagement that followed (opens, clicks, or orders and visits where there are no e-mail events). \
Log-likelihood per engagement is the log of the probability the profile gave that hour (closer to 0 is better); \
top-1 hit is the share of engagements in the profile's best hour, ±1 h hit within an hour of it (higher is better). \
The last column scores the hour of the week (168 hours), which also judges the weekday shape.";

fn table(backtest: &Backtest) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<h2>Churn</h2><p class=\"note\">{CHURN_NOTE}</p><table><tr><th>model</th><th>ROC AUC</th><th>PR AUC</th><th>Brier</th><th>log loss</th><th>top-10% lift</th></tr>"
    );
    for (name, m) in &backtest.churn {
        let _ = writeln!(
            s,
            "<tr><td>{name}</td><td>{:.3}</td><td>{:.3}</td><td>{:.4}</td><td>{:.4}</td><td>{:.2}</td></tr>",
            m.roc_auc, m.pr_auc, m.brier, m.log_loss, m.top_decile_lift
        );
    }
    s.push_str("</table>");
    if let Some(recs) = &backtest.recommendations {
        for (label, set, extra) in [
            ("all items", &recs.all_items, ""),
            ("new items", &recs.new_items, NEW_ITEMS_NOTE),
        ] {
            let _ = writeln!(
                s,
                "<h2>Recommendations, {label}</h2><p class=\"note\">{RECS_NOTE}{extra}</p><table><tr><th>model</th><th>recall@10</th><th>precision@10</th><th>NDCG@10</th><th>hit rate@10</th></tr>"
            );
            for (name, m) in set {
                let _ = writeln!(
                    s,
                    "<tr><td>{name}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                    m.recall_at_10, m.precision_at_10, m.ndcg_at_10, m.hit_rate_at_10
                );
            }
            s.push_str("</table>");
        }
    }
    let _ = writeln!(
        s,
        "<h2>Send time (hour of day)</h2><p class=\"note\">{SEND_NOTE}</p><table><tr><th>model</th><th>log-likelihood / engagement</th><th>top-1 hit</th><th>±1 h hit</th><th>log-likelihood by hour of week</th></tr>"
    );
    for (name, m) in &backtest.send_time {
        let _ = writeln!(
            s,
            "<tr><td>{name}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            m.log_likelihood, m.top1_hit_rate, m.within_1h_hit_rate, m.hour_of_week_log_likelihood
        );
    }
    s.push_str("</table>");
    s
}

/// Renders the report of a finished run.
pub fn render(trained: &Trained) -> String {
    let samples = &trained.send_time_samples;
    let b = &trained.backtest;
    let m = &trained.manifest;
    let curves = &trained.churn_curves;
    // Each chart with the sentence that says how to read it.
    let mut charts: Vec<(Chart, &str)> = Vec::new();
    if !curves.labels.is_empty() {
        let roc: Vec<(String, Vec<(f64, f64)>)> = curves
            .models
            .iter()
            .map(|(n, p)| (n.clone(), roc_curve(p, &curves.labels, 200)))
            .collect();
        charts.push((
            lines(
                "ROC, held-out churn",
                "false positive rate",
                "true positive rate",
                &roc,
                true,
            ),
            "Each curve trades false alarms for churners found as the risk threshold falls. The diagonal is chance; higher and further left is better.",
        ));
        if let Some((_, p)) = curves.models.iter().find(|(n, _)| n == "augur") {
            let rel: Vec<(f64, f64)> = reliability(p, &curves.labels, 10)
                .into_iter()
                .map(|(x, y, _)| (x, y))
                .collect();
            charts.push((
                lines(
                    "Reliability (augur)",
                    "predicted churn probability",
                    "observed churn rate",
                    &[("augur".into(), rel)],
                    true,
                ),
                "Contacts grouped by predicted risk: on the diagonal, the probabilities mean what they say; above it, churn is underestimated, below it overestimated.",
            ));
            let deciles: Vec<(String, f64)> = decile_rates(p, &curves.labels)
                .into_iter()
                .enumerate()
                .map(|(d, r)| (format!("{}", d + 1), r))
                .collect();
            charts.push((
                bars(
                    "Churn rate by risk decile (1 = riskiest)",
                    "churn rate",
                    &deciles,
                    |_| NEUTRAL,
                ),
                "augur's risk cut into tenths, riskiest first: the steeper the fall from left to right, the better the ranking.",
            ));
        }
    }
    if let Some(recs) = &b.recommendations {
        for (label, set) in [
            ("all items", &recs.all_items),
            ("new items", &recs.new_items),
        ] {
            let values: Vec<(String, f64)> = set
                .iter()
                .map(|(n, m)| (n.clone(), m.recall_at_10))
                .collect();
            charts.push((
                bars(
                    &format!("Recall@10, {label}"),
                    "recall@10",
                    &values,
                    model_color,
                ),
                "The share of the held-out purchases among each model's ten best products: taller is better.",
            ));
        }
    }
    charts.push((
        heatmap(
            "Send-time profile: population (local time)",
            &trained.send_time.population,
        ),
        "Darker hours are when engagement is likelier; the scale gives each hour's share of the week.",
    ));
    for (id, profile) in samples {
        charts.push((
            heatmap(&format!("Send-time profile: contact {id}"), profile),
            "One of the most engaged contacts: its own hours, pulled toward its cluster and the population where its history is thin.",
        ));
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>augur model {v}</title><style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}.charts{{display:flex;flex-wrap:wrap;gap:12px}}figure{{margin:0;max-width:560px}}figcaption,.note{{color:#444;font-size:0.9em}}</style></head><body>\
         <h1>augur model {v}</h1><p>As of {asof}; held-out window {from} .. {to}; churn horizon {h:.0} days (asked {ha:.0}).</p>",
        v = m.version,
        asof = m.as_of,
        from = b.held_out_from,
        to = b.held_out_to,
        h = m.horizon_days_used,
        ha = m.horizon_days
    );
    if !b.losses.is_empty() {
        html.push_str("<h2>Where augur loses</h2><ul>");
        for line in &b.losses {
            let _ = write!(html, "<li style=\"color:#b00020\">{line}</li>");
        }
        html.push_str("</ul>");
    }
    if !b.served.is_empty() {
        html.push_str("<h2>What is served</h2><ul>");
        for line in &b.served {
            let _ = write!(html, "<li>{line}</li>");
        }
        html.push_str("</ul>");
    }
    if !m.fallbacks.is_empty() {
        html.push_str("<h2>Fallbacks</h2><ul>");
        for f in &m.fallbacks {
            let _ = write!(html, "<li>{f}</li>");
        }
        html.push_str("</ul>");
    }
    html.push_str(&table(b));
    html.push_str("<h2>Charts</h2><div class=\"charts\">");
    for (chart, caption) in charts {
        match chart {
            Ok(svg) => {
                let _ = write!(
                    html,
                    "<figure>{svg}<figcaption>{caption}</figcaption></figure>"
                );
            }
            Err(e) => {
                let _ = write!(html, "<p>chart not drawn: {e}</p>");
            }
        }
    }
    html.push_str("</div></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    const MODELS: [&str; 6] = [
        "augur",
        "recency",
        "rfm_logistic",
        "own_most_bought",
        "popularity",
        "global_profile",
    ];

    #[test]
    fn decile_bars_and_heatmaps_use_no_model_colour() {
        let deciles: Vec<(String, f64)> = (1..=10)
            .map(|d| (d.to_string(), 1.0 / f64::from(d)))
            .collect();
        let decile_svg = bars("deciles", "churn rate", &deciles, |_| NEUTRAL).expect("bars");
        let mut profile = vec![1.0; 168];
        profile[9] = 20.0;
        let heat_svg = heatmap("profile", &profile).expect("heatmap");
        for model in MODELS {
            let color = hex(model_color(model));
            assert!(
                !decile_svg.to_uppercase().contains(&color)
                    && !heat_svg.to_uppercase().contains(&color),
                "{model}'s colour {color} is reused"
            );
        }
        assert!(decile_svg.to_uppercase().contains(&hex(NEUTRAL)));
        let distinct: std::collections::HashSet<String> =
            MODELS.iter().map(|m| hex(model_color(m))).collect();
        assert_eq!(distinct.len(), MODELS.len(), "two models share a colour");
    }

    #[test]
    fn a_heatmap_has_axis_labels_and_a_scale_up_to_its_largest_share() {
        let mut profile = vec![1.0; 168];
        profile[9] = 32.0; // 32 / 199 of the week: 16.1 %
        let svg = heatmap("profile", &profile).expect("heatmap");
        assert!(
            svg.contains("hour of day (local)") && svg.contains("day"),
            "axis titles"
        );
        assert!(svg.contains("share of the week"), "the scale's title");
        assert!(svg.contains("0.0%"), "the scale starts at zero");
        assert!(svg.contains("Mon") && svg.contains("Sun"));
        // The darkest cell is the colour at the top of the scale.
        assert!(svg.to_uppercase().contains(&hex(heat(1.0))));
    }
}
