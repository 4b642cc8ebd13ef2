using Covet.Data;
using Covet.Data.Diagnostics;
using Dapper;
using Microsoft.Data.Sqlite;
using OpenTelemetry.Metrics;

namespace Covet.Data.PrometheusExample;

/// <summary>
/// A small web app that pools an embedded SQLite database through Covet, keeps it under load, and exposes Covet's
/// OpenTelemetry metrics at <c>/metrics</c> in Prometheus text format (OpenTelemetry's maintained exporter), plus the
/// pool's health check at <c>/health</c>.
/// </summary>
public static class MetricsApp
{
    public static WebApplication Build(string url, string databasePath, int workers = 8)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(url);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);

        builder.Services.AddCovetDataSource(SqliteFactory.Instance, $"Data Source={databasePath}",
            configure: o =>
            {
                o.MaxPoolSize = 10;
                o.PoolName = "example";
            });
        builder.Services.AddHealthChecks().AddCovetPool();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(CovetMetrics.Name)
            .AddPrometheusExporter());
        builder.Services.AddHostedService(sp => new LoadGenerator(sp.GetRequiredService<CovetDataSource>(), workers));

        var app = builder.Build();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapHealthChecks("/health");
        app.MapGet("/stats", (CovetDataSource source) => source.GetStatistics());
        return app;
    }

    /// <summary>Keeps the pool busy so the metrics have something to show.</summary>
    private sealed class LoadGenerator(CovetDataSource source, int workers) : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
            Task.WhenAll(Enumerable.Range(0, workers).Select(async _ =>
            {
                while (!stoppingToken.IsCancellationRequested)
                {
                    await using var connection = source.CreateConnection();
                    await connection.ExecuteScalarAsync<int>("select 1");
                    await Task.Delay(1, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
                }
            }));
    }
}
