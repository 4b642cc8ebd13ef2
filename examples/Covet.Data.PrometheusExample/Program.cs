using Covet.Data.PrometheusExample;

// Usage: dotnet run --project examples/Covet.Data.PrometheusExample [-- --url http://127.0.0.1:5080]
// then: curl http://127.0.0.1:5080/metrics
var url = args.SkipWhile(a => a != "--url").Skip(1).FirstOrDefault() ?? "http://127.0.0.1:5080";
var database = Path.Combine(Path.GetTempPath(), $"covet-example-{Environment.ProcessId}.db");
try
{
    var app = MetricsApp.Build(url, database);
    Console.WriteLine($"Serving {url}/metrics, {url}/health and {url}/stats; Ctrl-C to stop.");
    await app.RunAsync();
}
finally
{
    File.Delete(database);
}
