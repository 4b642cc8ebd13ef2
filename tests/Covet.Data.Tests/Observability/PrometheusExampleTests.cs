using Covet.Data.PrometheusExample;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Covet.Data.Tests.Observability;

[TestClass]
public sealed class PrometheusExampleTests
{
    [TestMethod]
    public async Task ExampleApp_UnderLoad_ExposesCovetSeriesInPrometheusFormat()
    {
        var database = Path.Combine(Path.GetTempPath(), $"covet-prom-{Guid.NewGuid():N}.db");
        await using var app = MetricsApp.Build("http://127.0.0.1:0", database, workers: 2);
        await app.StartAsync();
        try
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            using var http = new HttpClient { BaseAddress = new Uri(address) };
            string scrape = "";
            for (var i = 0; i < 100 && !scrape.Contains("db_client_connection_use_time_seconds_count", StringComparison.Ordinal); i++)
            {
                scrape = await http.GetStringAsync("/metrics");
                await Task.Delay(50);
            }
            foreach (var series in new[]
            {
                "db_client_connection_count{", "db_client_connection_state=\"idle\"", "db_client_connection_state=\"used\"",
                "db_client_connection_max{", "db_client_connection_pending_requests{", "db_client_connection_timeouts_total{",
                "db_client_connection_wait_time_seconds_bucket{", "db_client_connection_use_time_seconds_count{",
                "db_client_connection_create_time_seconds_sum{", "covet_pool_leaks_detected_total{", "covet_pool_circuit_state{",
                "db_client_connection_pool_name=\"example\"",
            })
            {
                StringAssert.Contains(scrape, series);
            }
            Assert.AreEqual("Healthy", await http.GetStringAsync("/health"));
        }
        finally
        {
            await app.StopAsync();
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            File.Delete(database);
        }
    }
}
