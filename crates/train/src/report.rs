//! `report.html`: the backtest as a self-contained page — tables, and charts drawn with plotters
//! as inline SVG (ROC, reliability, churn by risk decile, recall@10 against the baselines,
//! send-time heatmaps for the population and sample contacts).

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::backtest::{Backtest, Trained};
use crate::metrics::{decile_rates, reliability, roc_curve};

const COLORS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];
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
        for (i, (name, points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
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

fn bars(title: &str, y: &str, values: &[(String, f64)]) -> Chart {
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
            .draw_series(values.iter().enumerate().map(|(i, (_, v))| {
                Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)],
                    COLORS[i % COLORS.len()].filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn heatmap(title: &str, profile: &[f64]) -> Chart {
    let max = profile.iter().copied().fold(0.0, f64::max).max(1e-12);
    svg(480, 220, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(25)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..24f64, 0f64..7f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(13)
            .x_label_formatter(&|h| format!("{h:.0}"))
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
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(profile.iter().enumerate().map(|(how, p)| {
                let (day, hour) = ((how / 24) as f64, (how % 24) as f64);
                let shade = (p / max).clamp(0.0, 1.0);
                let color = RGBColor(
                    255 - (shade * 224.0) as u8,
                    255 - (shade * 136.0) as u8,
                    255 - (shade * 75.0) as u8,
                );
                Rectangle::new([(hour, 6.0 - day), (hour + 1.0, 7.0 - day)], color.filled())
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn table(backtest: &Backtest) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<h2>Churn</h2><table><tr><th>model</th><th>ROC AUC</th><th>PR AUC</th><th>Brier</th><th>log loss</th><th>top-10% lift</th></tr>"
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
        for (label, set) in [
            ("all items", &recs.all_items),
            ("new items", &recs.new_items),
        ] {
            let _ = writeln!(
                s,
                "<h2>Recommendations, {label}</h2><table><tr><th>model</th><th>recall@10</th><th>precision@10</th><th>NDCG@10</th><th>hit rate@10</th></tr>"
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
        "<h2>Send time (hour of day)</h2><table><tr><th>model</th><th>log-likelihood / engagement</th><th>top-1 hit</th><th>±1 h hit</th></tr>"
    );
    for (name, m) in &backtest.send_time {
        let _ = writeln!(
            s,
            "<tr><td>{name}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            m.log_likelihood, m.top1_hit_rate, m.within_1h_hit_rate
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
    let mut charts: Vec<Chart> = Vec::new();
    if !curves.labels.is_empty() {
        let roc: Vec<(String, Vec<(f64, f64)>)> = curves
            .models
            .iter()
            .map(|(n, p)| (n.clone(), roc_curve(p, &curves.labels, 200)))
            .collect();
        charts.push(lines(
            "ROC, held-out churn",
            "false positive rate",
            "true positive rate",
            &roc,
            true,
        ));
        if let Some((_, p)) = curves.models.iter().find(|(n, _)| n == "augur") {
            let rel: Vec<(f64, f64)> = reliability(p, &curves.labels, 10)
                .into_iter()
                .map(|(x, y, _)| (x, y))
                .collect();
            charts.push(lines(
                "Reliability (augur)",
                "predicted churn probability",
                "observed churn rate",
                &[("augur".into(), rel)],
                true,
            ));
            let deciles: Vec<(String, f64)> = decile_rates(p, &curves.labels)
                .into_iter()
                .enumerate()
                .map(|(d, r)| (format!("{}", d + 1), r))
                .collect();
            charts.push(bars(
                "Churn rate by risk decile (1 = riskiest)",
                "churn rate",
                &deciles,
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
            charts.push(bars(&format!("Recall@10, {label}"), "recall@10", &values));
        }
    }
    charts.push(heatmap(
        "Send-time profile: population (local time)",
        &trained.send_time.population,
    ));
    for (id, profile) in samples {
        charts.push(heatmap(
            &format!("Send-time profile: contact {id}"),
            profile,
        ));
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>augur model {v}</title><style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}.charts{{display:flex;flex-wrap:wrap;gap:12px}}</style></head><body>\
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
    for chart in charts {
        match chart {
            Ok(svg) => html.push_str(&svg),
            Err(e) => {
                let _ = write!(html, "<p>chart not drawn: {e}</p>");
            }
        }
    }
    html.push_str("</div></body></html>\n");
    html
}
