using BenchmarkDotNet.Validators;
using Npgsql;

namespace Covet.Data.EntityFrameworkCore.Benchmarks.Infrastructure;

/// <summary>
/// Runs before anything is built: for every database that a selected benchmark needs (by its category), checks that the
/// connection-string variable is set and that the server answers <c>SELECT 1</c>. A critical error stops the whole run
/// with one clear message instead of a failed benchmark per case.
/// </summary>
public sealed class DatabaseEnvironmentValidator : IValidator
{
    public static readonly DatabaseEnvironmentValidator Instance = new();

    private DatabaseEnvironmentValidator() { }

    public bool TreatsWarningsAsErrors => true;

    public IEnumerable<ValidationError> Validate(ValidationParameters validationParameters)
    {
        var needed = validationParameters.Benchmarks
            .SelectMany(b => b.Descriptor.Categories.Select(c => (Category: c, Case: b)))
            .Where(x => Databases.VariableFor(x.Category) is not null)
            .GroupBy(x => x.Category);
        foreach (var group in needed)
        {
            var category = group.Key;
            var variable = Databases.VariableFor(category)!;
            var connectionString = Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(connectionString))
            {
                yield return new ValidationError(true, Databases.MissingMessage(variable, category), group.First().Case);
                continue;
            }
            var failure = TrySelectOne(connectionString);
            if (failure is not null)
                yield return new ValidationError(true,
                    $"{category} from {variable} is not reachable ({failure}). Start it with `scripts/servers.sh start` and " +
                    "`eval \"$(scripts/servers.sh env)\"`, then retry.",
                    group.First().Case);
        }
    }

    private static string? TrySelectOne(string connectionString)
    {
        try
        {
            using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5 }.ConnectionString);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            command.ExecuteScalar();
            return null;
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }
}
