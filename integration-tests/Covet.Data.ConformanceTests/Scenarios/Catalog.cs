namespace Covet.Data.ConformanceTests;

/// <summary>Every scenario of the suite, by area (one file per ADO.NET type).</summary>
internal static class Catalog
{
    private static readonly Lazy<IReadOnlyList<Scenario>> Scenarios = new(() =>
    {
        var all = ConnectionScenarios.All()
            .Concat(ConnectionStringScenarios.All())
            .Concat(CommandScenarios.All())
            .Concat(ParameterScenarios.All())
            .Concat(ReaderScenarios.All())
            .Concat(TransactionScenarios.All())
            .Concat(BatchScenarios.All())
            .Concat(FactoryScenarios.All())
            .Concat(NextBorrowerScenarios.All())
            .ToList();
        var duplicate = all.GroupBy(s => s.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidOperationException($"Scenario name '{duplicate.Key}' is used twice.");
        return all;
    });

    public static IReadOnlyList<Scenario> All => Scenarios.Value;

    public static Scenario Find(string name) => All.Single(s => s.Name == name);
}
